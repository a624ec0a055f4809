"""The S3 server stopping mid-upload (issue 20): the client retries, then a clear failure naming the
file; no manifest on the remote until every shard is there; the same upload completes once the
server answers again. A TCP proxy in front of a local S3-API server (moto) is what stops, so the
server keeps what it had received."""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import pytest

from tests.conftest import start_moto_server

pytestmark = pytest.mark.s3


class StoppableProxy:
    """127.0.0.1:port -> target; while stopped, every connection is closed at once (as a server
    that went away) and open ones are cut."""

    def __init__(self, target_port: int):
        self.target = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                conn.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.open += [conn, upstream]
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        self.up = False
        for s in self.open:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.open = []

    def start(self):
        self.up = True


@pytest.fixture
def s3_behind_proxy(monkeypatch):
    server, port = start_moto_server()
    proxy = StoppableProxy(port)
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing-key",
        "AWS_SECRET_ACCESS_KEY": "testing-secret",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}",
        "TIERLAKE_S3_MAX_ATTEMPTS": "3",
        "TIERLAKE_S3_CONNECT_TIMEOUT": "2",
    }.items():
        monkeypatch.setenv(key, value)
    import boto3

    direct = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}")  # straight to the server, past the proxy
    direct.create_bucket(Bucket="out")
    yield proxy, direct
    server.terminate()
    server.wait(timeout=10)


def _keys(client, prefix):
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket="out", Prefix=prefix).get("Contents", []))


def test_upload_interrupted_mid_way_fails_clearly_without_a_manifest_and_completes_again(s3_behind_proxy, tmp_path, monkeypatch):
    import pyarrow.fs as pafs

    from connectors.shards import UploadError, upload_tree

    proxy, direct = s3_behind_proxy
    local = tmp_path / "run"
    (local / "documents").mkdir(parents=True)
    for i in range(12):
        (local / "documents" / f"part-{i:05d}.parquet").write_bytes(os.urandom(2048))
    (local / "manifest.json").write_text(json.dumps({"run_id": "r1"}))
    real_copy, calls = pafs.copy_files, []

    def copy_then_stop(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 6:
            proxy.stop()  # the server goes away after five files
        return real_copy(*args, **kwargs)

    monkeypatch.setattr(pafs, "copy_files", copy_then_stop)
    started = time.time()
    with pytest.raises(
        UploadError,
        match=r"failed at documents/part-00005.parquet after retries \(5 of 13 files copied; "
        r"the manifest was not uploaded",
    ):
        upload_tree(str(local), "s3://out/run1")
    assert time.time() - started < 120
    got = _keys(direct, "run1/")
    assert "run1/manifest.json" not in got and len(got) == 5  # shards so far, never the manifest
    proxy.start()
    monkeypatch.setattr(pafs, "copy_files", real_copy)
    upload_tree(str(local), "s3://out/run1")  # the re-run completes
    got = _keys(direct, "run1/")
    assert len(got) == 13 and got[-1] == "run1/manifest.json"


def test_the_command_line_reports_a_failed_upload_in_one_line(s3_behind_proxy, tmp_path, capsys, spark, prefect_harness):
    from flows.cli import main

    proxy, direct = s3_behind_proxy
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": f"d{i}", "text": f"document number {i} about harbours " * 4}) + "\n" for i in range(20)))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: s3-fail\nsources: [{{name: inbox, path: {docs}}}]\noutput: {{path: 's3://out/run2'}}\n")
    proxy.stop()  # the server is gone for the whole upload
    assert main(["run", str(recipe)]) == 5
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("tierlake:")]
    # one line of ours; the flow run's own log (Prefect's) above it records the failure with its trace
    assert len(lines) == 1 and "upload to s3://out/run2 failed" in lines[0] and "after retries" in lines[0]
    assert "testing-secret" not in err
    proxy.start()
    assert _keys(direct, "run2/") == []  # nothing, and above all no manifest
    assert main(["--quiet", "run", str(recipe)]) == 0  # the same command completes
    assert "run2/manifest.json" in _keys(direct, "run2/")
