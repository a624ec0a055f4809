"""Bench outputs: replace one ``## section`` of docs/benchmarks.md, leaving the others as they are;
write a result file under bench/results/ atomically."""

from __future__ import annotations

import json
import os
import re

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def write_result(name: str, result, indent: int = 1) -> str:
    """``result`` as JSON in bench/results/``name`` (written to a temporary name, then renamed); its path."""
    path = os.path.join(RESULTS, name)
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=indent)
    os.replace(path + ".tmp", path)
    return path


def replace_section(path: str, title: str, body: str) -> None:
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    block = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda m: block + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + block
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(text.rstrip() + "\n")
    os.replace(tmp, path)
