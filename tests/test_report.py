"""`thinkrec report` on a tiny project: one self-contained page (no script, no external
reference) that opens with README's verdict, then the metrics table (top-N-only models included,
with their top-N users), one ROC chart of every pointwise model, top-N charts of every model,
per-user AUC boxes, warm/cold, per-cluster results, training curves, LLM usage and explanations;
missing inputs are skipped; a table wider than the page is split."""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from pipeline import registry
from pipeline.cli.main import main
from pipeline.metrics.report import join_report
from pipeline.report.collect import ReportInputs
from pipeline.report.page import COLUMNS, experiments_section, table, verdict_section
from report_fixture import MODELS, TOPN_HR, TOPN_ONLY, write_report_project
from stages.results_table import llm_rows, verdict

HEADLINE = ["auc", "uauc", "topn_hr@1", "topn_hr@3"]  # the fixture's params evaluate.headline


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = write_report_project(tmp_path_factory.mktemp("report"))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        assert main(["report", "-o", "out/report.html"]) == 0  # not a DVC repo: exp show is skipped
    return root


@pytest.fixture(scope="module")
def page(project) -> str:
    return (project / "out/report.html").read_text()


@pytest.fixture(scope="module")
def metrics(project) -> dict[str, dict]:
    """The evaluations the page was rendered from: metrics/<model>.json with its detail file."""
    return {model: join_report(*(json.loads((project / f"metrics/{part}{model}.json").read_text())
                                 for part in ("", "detail/"))) for model in [*MODELS, TOPN_ONLY]}


def strip(cell: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", cell))


def test_page_opens_with_the_verdict_of_readmes_results_block(page, metrics):
    body = page.split("<body>")[1]
    assert body.startswith("<h1>thinkrec report</h1><ul class=verdict id=verdict>")
    items = [strip(item) for item in re.findall(r"<li>(.*?)</li>", body.split("</ul>")[0])]
    assert items == [
        "Best LLM row on AUC vs the best CF model: collm - mf: AUC -0.157 [-0.205, -0.105] (below), "
        "UAUC -0.040 [-0.120, +0.030] (not separated); LLM rows above mf on AUC: 0 of 1.",
        "Main ablation, rdrec minus each: popularity: topn_hr@1 -0.050 [-0.200, +0.100] (not separated).",
        "Top-N, topn_hr@1 on 20 users: best LLM row rdrec 0.450 [0.300, 0.600], mf 0.300 [0.150, 0.450]; "
        "difference topn_hr@1 +0.150 [+0.010, +0.290] (above).",
    ]
    # the lines README's block has (stages/results_table.py), markdown aside
    readme = verdict(metrics, llm_rows(metrics), registry.comparisons(), HEADLINE)
    assert [line.replace("- **", "", 1).replace("**: ", ": ", 1) for line in readme] == items


def test_a_garbled_comparison_is_said_instead_of_a_verdict():
    models = {"collm": {"auc": 0.7, "vs_best_cf": {"model": "mf", "auc": 0.1, "auc_low": "<b>", "auc_high": 0.2}}}
    shown = verdict_section(models, HEADLINE)
    assert shown.startswith("<p class=note>No verdict: ") and "TypeError" in shown and "<li>" not in shown
    assert verdict_section({"mf": {"auc": 0.7}}, HEADLINE) == ""  # no LLM row compared with a CF model: no lines


def test_page_is_self_contained(page):
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=""", page, re.I)
    assert re.findall(r"https?://[^\s\"'<>]+", page) == ["http://www.w3.org/2000/svg"] * page.count("<svg")


def test_metrics_table_has_every_model_with_intervals_in_headline_order(page):
    table = re.search(r'<table id="results">(.*?)</table>', page).group(1)
    header = re.findall(r"<th(?: [^>]*)?>(.*?)</th>", table)
    # params' headline first, then the other top-level metrics with intervals (topn_hr@2 has none)
    assert header == ["model", "rows", "users", "auc", "uauc", "topn_hr@1", "topn_hr@3", "topn_ndcg@5"]
    rows = re.findall(r"<tr><td class=\"name\">(\w+)</td>", table)
    assert rows == [*MODELS, TOPN_ONLY]
    # each value over its interval (two lines: a narrow column), the best of a column bold
    assert '<td><span class="best">0.812</span> <span class=iv>[0.762, 0.862]</span></td>' in table
    cells = {row[0]: row[1:] for row in (re.findall(r"<td[^>]*>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", table))
             if row}
    rdrec = [strip(c) for c in cells[TOPN_ONLY]]
    assert rdrec[:4] == ["—", "20 top-N", "—", "—"]  # no pointwise rows: its top-N users, blank AUC and UAUC
    assert rdrec[4:] == ["0.450 [0.300, 0.600]", "0.700 [0.550, 0.850]", "0.575 [0.425, 0.725]"]
    assert cells[TOPN_ONLY][5].startswith('<span class="best">0.700</span>')  # the best HR@3 of the three
    assert [strip(c) for c in cells["mf"][:2]] == ["40", "8 20 top-N"]  # pointwise rows and users, then top-N users
    assert strip(cells["collm"][4]) == "0.200 [0.050, 0.350]"


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
    assert "-0.100 <span class=iv>[-0.200, +0.000]</span>" in page  # a cluster's paired difference
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
    cells = [[strip(cell) for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row)] for row in rows]
    assert cells == [["experiment", "evaluate.bootstrap.seed", "mf AUC"],
                     ["workspace", "7", "0.600 [0.500, 0.700]"],
                     ["main", "2026", "0.700 [0.600, 0.800]"],
                     ["seed7 (bbbbbbb)", "7", "0.600 [0.500, 0.700]"]]


def test_a_table_wider_than_the_page_is_split_with_its_labels_repeated():
    header = ["model", "minus", *(f"m{i}" for i in range(COLUMNS + 3))]
    rows = [["a", "b<c", *range(COLUMNS + 3)]]
    tables = re.findall(r'<table id="(\w+(?:-\d)?)"><thead><tr>(.*?)</tr></thead><tbody>(.*?)</tbody>',
                        table(header, rows, id_="wide", labels=2))
    assert [id_ for id_, _, _ in tables] == ["wide", "wide-2"]
    heads = [re.findall(r"<th[^>]*>(.*?)</th>", head) for _, head, _ in tables]
    assert heads == [header[:2 + COLUMNS], [*header[:2], *header[2 + COLUMNS:]]]
    bodies = [re.findall(r"<td[^>]*>(.*?)</td>", body) for _, _, body in tables]
    assert bodies == [["a", "b&lt;c", *map(str, range(COLUMNS))], ["a", "b&lt;c", *map(str, range(COLUMNS, COLUMNS + 3))]]


def test_a_row_whose_params_changed_is_marked_under_the_results():
    from pipeline.report.page import render

    models = {"mf": {"auc": 0.7, "auc_low": 0.6, "auc_high": 0.8, "n_rows": 5, "n_users": 2}}
    marked = render(ReportInputs(models=models, headline=["auc"], marks={"mf": "params changed since: <evaluate>"}))
    assert "<p class=note id=marks>mf: params changed since: &lt;evaluate&gt;</p>" in marked
    assert "id=marks" not in render(ReportInputs(models=models, headline=["auc"]))


def test_the_top_n_verdict_prefers_the_full_catalogue_metric():
    from pipeline.report.verdict import verdict_lines

    both = {"full_hr@10": 0.4, "full_hr@10_low": 0.3, "full_hr@10_high": 0.5, "topn_hr@1": 0.2,
            "topn_hr@1_low": 0.1, "topn_hr@1_high": 0.3, "full_users": 148, "topn_users": 140}
    paired = {"model": "sasrec", "full_hr@10": -0.1, "full_hr@10_low": -0.2, "full_hr@10_high": -0.05,
              "topn_hr@1": 0.0, "topn_hr@1_low": -0.1, "topn_hr@1_high": 0.1}
    reports = {"sasrec": dict(both), "thinkrec": {**both, "vs_best_cf": paired}}
    lines = dict(verdict_lines(reports, ["thinkrec"], {}, ["auc", "topn_hr@1", "full_hr@10"]))
    assert lines["Top-N, full_hr@10 on 148 users"].endswith("difference full_hr@10 -0.100 [-0.200, -0.050] (below).")
    reports["thinkrec"]["vs_best_cf"] = {key: value for key, value in paired.items() if "full" not in key}
    assert "Top-N, topn_hr@1 on 140 users" in dict(verdict_lines(reports, ["thinkrec"], {}, ["full_hr@10", "topn_hr@1"]))
