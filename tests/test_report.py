"""`thinkrec report` on a tiny project: one self-contained page (no script, no external
reference) with the metrics table (top-N-only models included), one ROC chart of every pointwise
model, top-N charts of every model, per-user AUC boxes, warm/cold, per-cluster results, training
curves, LLM usage and explanations; missing inputs are skipped."""
from __future__ import annotations

import re

import pytest

from pipeline.cli.main import main
from pipeline.report.collect import ReportInputs
from pipeline.report.page import experiments_section
from report_fixture import MODELS, TOPN_HR, TOPN_ONLY, write_report_project


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = write_report_project(tmp_path_factory.mktemp("report"))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        assert main(["report", "-o", "out/report.html"]) == 0  # not a DVC repo: exp show is skipped
    return (root / "out/report.html").read_text()


def test_page_is_self_contained(page):
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=""", page, re.I)
    assert re.findall(r"https?://[^\s\"'<>]+", page) == ["http://www.w3.org/2000/svg"] * page.count("<svg")


def test_metrics_table_has_every_model_with_intervals_in_headline_order(page):
    table = re.search(r'<table id="results">(.*?)</table>', page).group(1)
    header = re.findall(r"<th(?: [^>]*)?>(.*?)</th>", table)
    # params' headline first, then the other top-level metrics with intervals (topn_hr@2 has none)
    assert header == ["model", "rows", "users", "top-N users", "auc", "uauc", "topn_hr@1", "topn_hr@3", "topn_ndcg@5"]
    rows = re.findall(r"<tr><td class=\"name\">(\w+)</td>", table)
    assert rows == [*MODELS, TOPN_ONLY]
    assert '<span class="best">0.812 [0.762, 0.862]</span>' in table
    cells = {row[0]: row[1:] for row in (re.findall(r"<td[^>]*>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", table))
             if row}
    strip = lambda cell: re.sub(r"<[^>]+>", "", cell)
    rdrec = [strip(c) for c in cells[TOPN_ONLY]]
    assert rdrec[:5] == ["0", "0", "20", "—", "—"]  # no pointwise rows: blank AUC and UAUC
    assert rdrec[5:] == ["0.450 [0.300, 0.600]", "0.700 [0.550, 0.850]", "0.575 [0.425, 0.725]"]
    assert '<span class="best">0.700 [0.550, 0.850]</span>' in cells[TOPN_ONLY][6]  # the best HR@3 of the three
    assert strip(cells["collm"][5]) == "0.200 [0.050, 0.350]"


def test_topn_charts_show_every_model_with_its_interval(page):
    section = page.split("<h2>Top-N ranking</h2>")[1].split("<h2>")[0]
    charts = re.findall(r"<svg.*?</svg>", section)
    titles = [re.search(r"<title>(.*?)</title>", c).group(1) for c in charts]
    assert titles == ["top-N hr@1", "top-N hr@3", "top-N ndcg@5"]  # every top-level top-N metric, headline first
    hr1 = charts[0]
    assert re.findall(r'data-row="(\w+)"', hr1) == [*MODELS, TOPN_ONLY]
    # each dot sits at its value and its line spans the interval, on the chart's own linear axis
    dots = [float(x) for x in re.findall(r'<circle cx="([\d.]+)"', hr1)]
    lines = [(float(a), float(b)) for a, b in re.findall(r'<line x1="([\d.]+)" y1="[\d.]+" x2="([\d.]+)" y2="[\d.]+" '
                                                          r'stroke="#', hr1)]
    values = [TOPN_HR[m][0] for m in [*MODELS, TOPN_ONLY]]
    scale = (dots[2] - dots[1]) / (values[2] - values[1])
    assert dots[0] - dots[1] == pytest.approx(scale * (values[0] - values[1]), abs=0.2)
    for (low, high), dot, value in zip(lines, dots, values):
        assert dot - low == pytest.approx(scale * (value - max(0.0, value - 0.15)), abs=0.2)
        assert high - dot == pytest.approx(scale * 0.15, abs=0.2)


def test_charts_and_sections(page):
    roc = page.split("<h2>ROC curves</h2>")[1].split("</svg>")[0]
    assert re.findall(r'data-series="(\w+)"', roc) == list(MODELS)  # the top-N-only model has no ROC
    boxes = page.split("<h2>Per-user AUC (train)</h2>")[1].split("</svg>")[0]
    assert re.findall(r'data-group="(\w+)"', boxes) == list(MODELS)
    assert "mf (warm)" in page and "collm (cold)" in page and f"{TOPN_ONLY} (warm)" not in page
    assert "<h3>mf</h3>" in page and "<h3>collm minus mf</h3>" in page  # per-cluster sections
    assert "-0.100 [-0.200, +0.000]" in page  # a cluster's paired difference
    assert page.count('data-series="') == len(MODELS) + 2 + 1 + 1  # ROC, LLM loss x2, CF loss, CF AUC
    assert "<td>1,291</td>" in page  # keyword-stage LLM calls
    assert "The user avoids horror." in page and "Likes comedies." in page
    assert "dvc exp show: exit" in page  # listed under "Not shown"


def test_missing_inputs_are_skipped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["report", "-o", "r.html", "--no-experiments"]) == 0
    page = (tmp_path / "r.html").read_text()
    assert "run <code>dvc repro evaluate</code>" in page and "<svg" not in page


def test_experiments_table_shows_changed_params_and_each_records_auc():
    def record(rev, seed, auc):
        return {"rev": rev, "data": {"params": {"params.yaml": {"data": {"evaluate": {"bootstrap": {"seed": seed}},
                                                                          "cf": {"model": "mf"}}}},
                                      "metrics": {"metrics/mf.json": {"data": {"auc": auc, "auc_low": auc - 0.1,
                                                                                "auc_high": auc + 0.1}}}}}
    base = {**record("a" * 40, 2026, 0.7), "name": "main",
            "experiments": [{"name": "seed7", "revs": [{**record("b" * 40, 7, 0.6), "name": "seed7"}]}]}
    html = experiments_section(ReportInputs(models={"mf": {}}, experiments=[record("workspace", 7, 0.6), base]))
    rows = re.findall(r"<tr>(.*?)</tr>", html)
    cells = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row) for row in rows]
    assert cells == [["experiment", "evaluate.bootstrap.seed", "mf AUC"],
                     ["workspace", "7", "0.600 [0.500, 0.700]"],
                     ["main", "2026", "0.700 [0.600, 0.800]"],
                     ["seed7 (bbbbbbb)", "7", "0.600 [0.500, 0.700]"]]
