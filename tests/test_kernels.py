"""Kernels without Spark: normalization, Spark settings, recipes, the manifest schema, the demo lake."""

import json
import os

import pyarrow as pa
import pytest

from connectors.demo_lake import jaccard, word_shingles
from connectors.manifest import SCHEMA_PATH, json_schema
from connectors.spark_session import SparkSettings, local_cores, session_conf
from curation.normalize import normalize_text
from flows.recipe import RecipeError, load_recipe, parse_recipe

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_normalize_nfkc_lower_whitespace_keeps_digits():
    out = normalize_text(pa.array(["  Ｔａｂｌｅ\u00a03\n\tIS  here ", "Table 4 is here", "ﬁne", None]))
    assert out.to_pylist() == ["table 3 is here", "table 4 is here", "fine", None]


def test_spark_conf_is_sized_for_the_machine():
    conf = session_conf(SparkSettings(master="local[2]"))
    assert conf["spark.sql.shuffle.partitions"] == "8"
    assert conf["spark.sql.execution.arrow.pyspark.enabled"] == "true"
    assert conf["spark.pyspark.python"].endswith("python") or "python" in conf["spark.pyspark.python"]
    assert local_cores("local[3]") == 3
    assert session_conf(SparkSettings(conf={"spark.sql.shuffle.partitions": "2"}))["spark.sql.shuffle.partitions"] == "2"
    # the driver JVM logs errors only, from the configuration shipped in the package; a recipe can replace it
    config = conf["spark.driver.extraJavaOptions"].split("file:", 1)[1]
    assert os.path.exists(config) and "rootLogger.level = error" in open(config).read()
    assert session_conf(SparkSettings(conf={"spark.driver.extraJavaOptions": "-Dx=1"}))["spark.driver.extraJavaOptions"] == "-Dx=1"


def test_recipe_errors_name_field_value_and_expectation(tmp_path):
    bad = {
        "name": "x",
        "sources": [{"name": "a", "path": "p", "format": "xml"}],
        "output": {"path": "o"},
        "stages": {"exact_dedup": {"keep": {"rule": "biggest"}}},
        "spark": {"shuffle_partitions": 0},
    }
    with pytest.raises(RecipeError) as err:
        parse_recipe(bad, "r.yaml")
    msg = str(err.value)
    assert "sources.0.format" in msg and "'xml'" in msg and "jsonl" in msg
    assert "stages.exact_dedup.keep.rule" in msg and "'biggest'" in msg
    assert "spark.shuffle_partitions" in msg
    with pytest.raises(RecipeError, match="output"):
        parse_recipe({"name": "x", "sources": [{"name": "a", "path": "p"}]})
    with pytest.raises(RecipeError, match="credentials"):
        parse_recipe({"name": "x", "sources": [{"name": "a", "path": "s3://key:secret@bucket/x"}], "output": {"path": "o"}})
    with pytest.raises(RecipeError, match="highest_score"):
        parse_recipe(
            {
                "name": "x",
                "sources": [{"name": "a", "path": "p"}],
                "output": {"path": "o"},
                "stages": {"exact_dedup": {"keep": {"rule": "highest_score"}}},
            }
        )
    (tmp_path / "broken.yaml").write_text("name: [unclosed")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(str(tmp_path / "broken.yaml"))


def test_recipe_paths_resolve_against_the_recipe_folder():
    recipe = load_recipe(os.path.join(ROOT, "examples", "demo.yaml"), base_dir="/data/w")
    assert recipe.sources[0].path == "/data/w/lake/corpus/encyclopedia"
    assert recipe.output.path == "/data/w/output"


def test_shipped_manifest_schema_matches_the_models():
    with open(SCHEMA_PATH) as fh:
        assert json.load(fh) == json.loads(json.dumps(json_schema())), "run `python -m connectors.manifest`"


def test_shingles_and_jaccard():
    assert word_shingles("a b c", 5) == {("a", "b", "c")}
    assert word_shingles("", 5) == set()
    text = " ".join(f"w{i}" for i in range(40))
    assert jaccard(text, text) == 1.0
    assert 0 < jaccard(text, text.replace("w20", "x")) < 1


def test_demo_lake_is_deterministic_and_has_ground_truth(tmp_path):
    import hashlib

    from connectors.demo_lake import generate_demo_lake

    def digest(root):
        h = hashlib.sha256()
        for dirpath, _, files in sorted(os.walk(root)):
            for f in sorted(files):
                h.update(f.encode())
                h.update(open(os.path.join(dirpath, f), "rb").read())
        return h.hexdigest()

    a = generate_demo_lake(str(tmp_path / "a"), seed=3, n_docs=400)
    b = generate_demo_lake(str(tmp_path / "b"), seed=3, n_docs=400)
    assert a == b and digest(tmp_path / "a") == digest(tmp_path / "b")
    import pyarrow.parquet as pq

    truth = pq.read_table(tmp_path / "a" / "ground_truth" / "documents.parquet").to_pylist()
    near = [t for t in truth if t["kind"] == "near_duplicate"]
    assert near and all(0.0 < t["jaccard"] <= 1.0 for t in near)
    assert a["planted"]["malformed_records"] == 4
    # a prose scale lengthens the prose documents only, and a scale that cannot be is refused
    longer = generate_demo_lake(str(tmp_path / "long"), seed=3, n_docs=400, prose_scale=3)
    assert longer["prose_scale"] == 3 and "prose_scale" not in a
    size = lambda root: sum(f.stat().st_size for f in (root / "corpus" / "encyclopedia").iterdir())  # noqa: E731
    assert size(tmp_path / "long") > 2 * size(tmp_path / "a")
    with pytest.raises(ValueError, match="prose_scale"):
        generate_demo_lake(str(tmp_path / "bad"), seed=3, n_docs=400, prose_scale=0)


def test_whitespace_kernel_equals_the_regex_normalization():
    import random

    from curation.normalize import exact_keys_arrow, normalize_text_regex

    rng = random.Random(7)
    alphabet = ["a", "B", "Ｔ", "ﬁ", " ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\u00a0", "\u3000", "é", "\x1f"]
    texts = ["".join(rng.choices(alphabet, k=rng.randint(0, 12))) for _ in range(400)] + [None]
    arr = pa.array(texts)
    for lo, hi in [(0, len(texts)), (3, 250), (399, 401), (10, 10)]:
        part = arr.slice(lo, hi - lo)
        assert normalize_text(part).to_pylist() == normalize_text_regex(part).to_pylist()
    keys, lengths = exact_keys_arrow(arr)
    ref = normalize_text_regex(pa.array([t or "" for t in texts])).to_pylist()
    assert lengths.tolist() == [len(r) for r in ref]
    assert len(set(keys.to_pylist())) == len(set(ref))


def test_ascii_batches_normalize_as_the_unicode_path():
    """An all-ASCII batch takes the ASCII fast path (no NFKC, ASCII lower-casing): same strings
    as the regex reference, including slices and nulls."""
    import random

    from curation.normalize import normalize_text_regex

    rng = random.Random(9)
    alphabet = ["a", "Z", "Q9", " ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\x1f", "_", "-", "."]
    texts = ["".join(rng.choices(alphabet, k=rng.randint(0, 20))) for _ in range(300)] + [None, ""]
    arr = pa.array(texts)
    for lo, hi in [(0, len(texts)), (5, 200), (299, 302)]:
        part = arr.slice(lo, hi - lo)
        assert normalize_text(part).to_pylist() == normalize_text_regex(part).to_pylist()
