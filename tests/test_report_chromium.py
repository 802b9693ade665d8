"""The report in a real browser: headless Chromium (Debian's package) renders the tiny project's
page offline; the screenshot is not blank and the rendered DOM holds the table rows (the top-N-only
model's too) and charts (ROC of the pointwise models, top-N HR of every model)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli.main import main
from png_pixels import read_png
from report_fixture import MODELS, TOPN_ONLY, write_report_project

CHROMIUM = Path("/usr/bin/chromium")
WIDTH, HEIGHT = 1000, 1400


def chromium(user_data: Path, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium with networking side channels off (no QUIC, sync, updates, background fetches)."""
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={user_data}", f"--window-size={WIDTH},{HEIGHT}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium; .ci/run does)")
def test_report_renders_in_chromium(tmp_path, monkeypatch):
    root = write_report_project(tmp_path / "project")
    monkeypatch.chdir(root)
    assert main(["report", "-o", "report.html", "--no-experiments"]) == 0
    url = (root / "report.html").as_uri()

    shot = tmp_path / "shot.png"
    done = chromium(tmp_path / "profile", f"--screenshot={shot}", url)
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    pixels = read_png(shot)[..., :3]
    assert pixels.shape[:2] == (HEIGHT, WIDTH)
    assert (pixels[0, 0] == 255).all()  # white page background
    inked = (pixels < 200).any(axis=-1)  # text, lines, chart strokes
    assert 0.005 < inked.mean() < 0.5
    colours = {tuple(c) for c in pixels[inked][:: max(1, inked.sum() // 20000)]}
    assert len(colours) > 20  # more than black text: the charts' palette is drawn
    blue = np.array([0x1F, 0x77, 0xB4])  # the first model's colour (ROC curve, box)
    assert (np.abs(pixels.astype(int) - blue).sum(axis=-1) < 30).sum() > 200

    dom = chromium(tmp_path / "profile", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    table = re.search(r'<table id="results">(.*?)</table>', dom.stdout, re.S).group(1)
    assert re.findall(r'<tr><td class="name">(\w+)</td>', table) == [*MODELS, TOPN_ONLY]
    assert "0.812 [0.762, 0.862]" in table and "0.450 [0.300, 0.600]" in table  # mf's AUC, rdrec's HR@1
    roc = dom.stdout.split("ROC curves</h2>")[1].split("</svg>")[0]
    assert re.findall(r'<polyline[^>]*data-series="(\w+)"', roc) == list(MODELS)
    topn = dom.stdout.split("Top-N ranking</h2>")[1].split("</svg>")[0]
    assert "<title>top-N hr@1</title>" in topn
    assert re.findall(r'<circle[^>]*data-row="(\w+)"', topn) == [*MODELS, TOPN_ONLY]
