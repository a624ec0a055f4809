"""Render a page in Debian's headless Chromium (flags from ../shared/reference: no sandbox as root,
no background networking on a closed network) and return its DOM and a screenshot."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise AssertionError("Chromium is needed for the report test: sudo apt-get install -y chromium (.ci/run installs it)")
    return path


def render(url: str, out_png: str, width: int = 1100, height: int = 5000) -> str:
    """Screenshot ``url`` to ``out_png``; return the DOM after load."""
    with tempfile.TemporaryDirectory() as profile:
        base = [chromium(), *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"]
        shot = subprocess.run(base + [f"--screenshot={out_png}", url], capture_output=True, text=True, timeout=180)
        assert shot.returncode == 0 and os.path.exists(out_png), f"chromium screenshot failed: {shot.stderr[-2000:]}"
        dom = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True, timeout=180)
        assert dom.returncode == 0, f"chromium --dump-dom failed: {dom.stderr[-2000:]}"
        return dom.stdout


def ink_fraction(png: str) -> tuple[float, int]:
    """(fraction of non-white pixels, number of distinct colours) of a screenshot."""
    import numpy as np
    from PIL import Image

    img = np.asarray(Image.open(png).convert("RGB"))
    ink = (img < 245).any(axis=2).mean()
    colours = len(np.unique(img.reshape(-1, 3)[:: max(1, img.shape[0] * img.shape[1] // 200_000)], axis=0))
    return float(ink), colours
