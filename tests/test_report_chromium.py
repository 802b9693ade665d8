"""The report in a real browser: headless Chromium (Debian's package) renders the tiny project's
page offline; the screenshot is not blank and the rendered DOM holds the table rows (the top-N-only
model's too) and charts (ROC of the pointwise models, top-N HR of every model). On a laptop's
1280 px window, no table of the tiny project's page or of the committed metrics' page scrolls
sideways."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli.main import main
from pipeline.report import collect
from png_pixels import read_png
from report_fixture import MODELS, TOPN_ONLY, write_report_project

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 1000, 1400
LAPTOP = 1280  # px: the window the tables must fit
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(),
                                    reason="needs Debian's chromium (apt-get install chromium; .ci/run does)")


def chromium(user_data: Path, *args: str, width: int = WIDTH) -> subprocess.CompletedProcess:
    """Headless Chromium with networking side channels off (no QUIC, sync, updates, background fetches)."""
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={user_data}", f"--window-size={width},{HEIGHT}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


# appended to a copy of the page (the page itself has no script): each table's container (by its id,
# else its place), then the page, as "name scrollWidth clientWidth" lines in a <pre id=widths>
MEASURE = """<script>addEventListener('load', () => {
  const boxes = [...document.querySelectorAll('table')].map((t, i) => [t.id || `table ${i}`, t.parentElement]);
  boxes.push(['page', document.documentElement]);
  const out = document.createElement('pre'); out.id = 'widths';
  out.textContent = boxes.map(([name, box]) => `${name} ${box.scrollWidth} ${box.clientWidth}`).join('\\n');
  document.body.append(out);
});</script>"""


def widths(page: Path, tmp_path: Path) -> dict[str, tuple[int, int]]:
    """name -> (scrollWidth, clientWidth) of every table's container and of the page, at LAPTOP px."""
    measured = tmp_path / f"measured-{page.name}"
    measured.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    dom = chromium(tmp_path / "profile", "--dump-dom", measured.as_uri(), width=LAPTOP)
    assert dom.returncode == 0, dom.stderr[-2000:]
    lines = re.search(r'<pre id="widths">(.*?)</pre>', dom.stdout, re.S).group(1).splitlines()
    return {name: (int(scroll), int(client)) for name, scroll, client in (line.rsplit(" ", 2) for line in lines)}


def experiments(root: Path, timeout: float = 60.0) -> tuple[list[dict], None]:
    """In place of `dvc exp show --json`: two records two params apart, with every model's metrics."""
    metrics = {f"metrics/{path.name}": {"data": json.loads(path.read_text())} for path in sorted((root / "metrics").glob("*.json"))}

    def record(rev: str, seed: int, subset: str) -> dict:
        params = {"evaluate": {"bootstrap": {"seed": seed}, "subset": subset}}
        return {"rev": rev, "data": {"params": {"params.yaml": {"data": params}}, "metrics": metrics}}
    return [record("workspace", 7, "test"), {**record("a" * 40, 2026, "test_small"), "name": "main"}], None


@needs_chromium
def test_tables_fit_a_laptop_window(tmp_path, monkeypatch):
    """The tiny project's page, and the page of the repository's committed metrics/ and params.yaml
    (every evaluated model, the headline metrics, the paired comparisons; 12 models' AUC per experiment)."""
    fixture = write_report_project(tmp_path / "fixture")
    committed = tmp_path / "committed"
    shutil.copytree(ROOT / "metrics", committed / "metrics")
    shutil.copy(ROOT / "params.yaml", committed / "params.yaml")
    monkeypatch.setattr(collect, "dvc_experiments", experiments)
    for root in (fixture, committed):
        monkeypatch.chdir(root)
        assert main(["report", "-o", "report.html"]) == 0
    measured = {f"{root.name} {name}": value for root in (fixture, committed)
                for name, value in widths(root / "report.html", tmp_path).items()}
    assert {"committed results", "committed paired", "committed experiments", "committed experiments-2",
            "fixture explanations", "fixture results"} <= set(measured)  # the wide ones, split at COLUMNS
    assert {name: value for name, value in measured.items() if value[0] > value[1]} == {}  # nothing scrolls sideways


@needs_chromium
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
    shown = re.sub(r"<[^>]+>", "", table)
    assert "0.812 [0.762, 0.862]" in shown and "0.450 [0.300, 0.600]" in shown  # mf's AUC, rdrec's HR@1
    roc = dom.stdout.split("ROC curves</h2>")[1].split("</svg>")[0]
    assert re.findall(r'<polyline[^>]*data-series="(\w+)"', roc) == list(MODELS)
    topn = dom.stdout.split("Top-N ranking</h2>")[1].split("</svg>")[0]
    assert "<title>top-N hr@1</title>" in topn
    assert re.findall(r'<circle[^>]*data-row="(\w+)"', topn) == [*MODELS, TOPN_ONLY]
