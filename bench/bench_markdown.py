"""Replace one ``## section`` of docs/benchmarks.md, leaving the others as they are."""

from __future__ import annotations

import os
import re


def replace_section(path: str, title: str, body: str) -> None:
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    block = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda m: block + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + block
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(text.rstrip() + "\n")
    os.replace(tmp, path)
