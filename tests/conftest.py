"""Shared fixtures: one Spark session and one Prefect test harness for the whole run."""

from __future__ import annotations

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.abspath(os.path.join(ROOT, "..", "shared", "data"))

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


def shared_path(*parts: str) -> str:
    """Path under ../shared/data, or skip the test with a clear message when it is absent."""
    path = os.path.join(SHARED_DATA, *parts)
    if not os.path.exists(path):
        pytest.skip(f"shared data not present: {path} (see ../shared/data/SOURCES.md)")
    return path


def pytest_collection_modifyitems(config, items):
    """A test is marked by what it uses, not by its module: one that takes the ``spark`` fixture
    (directly or through another, like ``demo_run``) is ``spark``, one that takes
    ``prefect_harness`` is ``prefect`` — so ``make test-fast`` runs every test that needs neither."""
    for item in items:
        if "spark" in item.fixturenames and item.get_closest_marker("spark") is None:
            item.add_marker(pytest.mark.spark)
        if "prefect_harness" in item.fixturenames and item.get_closest_marker("prefect") is None:
            item.add_marker(pytest.mark.prefect)


def start_moto_server():
    """(process, port) of a local S3-API server (moto) on 127.0.0.1, once it accepts connections."""
    import socket
    import subprocess
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    return proc, port


@pytest.fixture(scope="session")
def spark():
    from connectors.spark_session import SparkSettings, get_spark

    session = get_spark(SparkSettings(master="local[2]", shuffle_partitions=4, driver_memory="2g"))
    yield session
    session.stop()


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def demo_lake(tmp_path_factory):
    """A small demo lake (shared by the tests that read it)."""
    from connectors.demo_lake import generate_demo_lake

    root = str(tmp_path_factory.mktemp("demo") / "lake")
    summary = generate_demo_lake(root, seed=11, n_docs=1500)
    return root, summary


SELECT_BUDGET = 300_000  # the test lake is smaller than the demo's: a budget its pools hold


def demo_recipe(workdir: str) -> str:
    """examples/demo.yaml with the selection budget sized for the test lake."""
    import yaml

    with open(os.path.join(ROOT, "examples", "demo.yaml")) as fh:
        data = yaml.safe_load(fh)
    data["stages"]["select"]["budget_tokens"] = SELECT_BUDGET
    path = os.path.join(workdir, "demo-test.yaml")
    with open(path, "w") as fh:
        yaml.safe_dump(data, fh)
    return path


@pytest.fixture(scope="session")
def demo_run(spark, prefect_harness, demo_lake):
    """(recipe, output folder) of one `tierlake run` of the demo recipe on the test lake, shared by
    the end-to-end checks and the `tierlake inspect` tests."""
    from flows.cli import main

    lake, _ = demo_lake
    workdir = os.path.dirname(lake)
    recipe = demo_recipe(workdir)
    assert main(["run", recipe, "--base-dir", workdir, "--overwrite"]) == 0
    return recipe, os.path.join(workdir, "output")
