"""Data stays data in `thinkrec report` (issue 31): metrics files travel through shared DVC
remotes, so every field the page prints may hold markup. Each field of the report fixture gets
its own planted payload; the page, parsed by html.parser, holds no element or attribute of any
payload, and every payload is still shown, as text."""
from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from pipeline import schemas
from pipeline.artifacts import read_frame, write_frame
from pipeline.cli.main import main
from pipeline.report import collect
from report_fixture import stamped, write_report_project


def plant(tag: str) -> str:
    """Markup that would run (`tag` tells the fields apart)."""
    return f"\"><img src=x onerror=alert('{tag}')><script>alert('{tag}')</script>"


def plant_name(tag: str) -> str:
    """Markup that fits a file name (no slash): model, stage and variant names come from file names."""
    return f"\"><img src=x onerror=alert('{tag}')>"


SHOWN = ["n_rows", "n_users", "topn_users", "warm.n_users", "warm.n_rows", "cold.n_users", "cold.n_rows",
         "cluster", "cluster.users", "cluster.field", "vs_best_cf.model", "explanation", "gold",
         "param.key", "param.value", "experiment"]
SHOWN_NAMES = ["model", "stage", "rec_variant", "cf_model", "explanation_model", "explained_model", "unreadable"]
METRIC = plant_name("metric")  # a metric name (a key with _low/_high): a column and a chart title


def _plant_metrics(root: Path) -> None:
    """Into the headline file (metrics/mf.json: counts) and the detail file (metrics/detail/mf.json:
    groups, clusters, comparisons), keeping their stamps."""
    path, detail_path = root / "metrics/mf.json", root / "metrics/detail/mf.json"
    mf, detail = json.loads(path.read_text()), json.loads(detail_path.read_text())
    for field in ("n_rows", "n_users", "topn_users"):
        mf[field] = plant(field)
    for group in ("warm", "cold"):
        detail[group].update({f: plant(f"{group}.{f}") for f in ("n_users", "n_rows")})
    detail["cold"]["auc"] = plant("cold.auc")  # a string where a number belongs: not drawn, no crash
    detail["clusters"]["0"][plant("cluster.field")] = 2  # columns: the fields of the first cluster
    detail["clusters"][plant("cluster")] = {"auc": 0.5, "uauc": 0.5, "users": plant("cluster.users"), "rows": 1}
    detail["vs_best_cf"] = {"model": plant("vs_best_cf.model"), "auc": 0.01, "auc_low": -0.02, "auc_high": 0.04}
    collm_path = root / "metrics/detail/collm.json"
    collm = json.loads(collm_path.read_text())
    collm["vs_best_cf"]["model"] = plant("verdict")  # the best CF model's name: in the verdict's first line
    collm_path.write_text(json.dumps(collm))
    detail.update({f"topn_{METRIC}": 0.5, f"topn_{METRIC}_low": 0.4, f"topn_{METRIC}_high": 0.6})
    path.write_text(json.dumps(mf))
    detail_path.write_text(json.dumps(detail))
    model = plant_name("model")  # a third model: metrics, ROC points and predictions under its name
    for folder, ext in (("metrics", "json"), ("metrics/detail", "json"), ("plots/roc", "json"), ("data/predictions", "parquet")):
        shutil.copy(root / f"{folder}/collm.{ext}", root / f"{folder}/{model}.{ext}")
    (root / f"metrics/{plant_name('stage')}.json").write_text(stamped(root, {"llm": {"calls": plant("calls")}}, []))
    (root / f"metrics/{plant_name('unreadable')}.json").write_text("{not json")
    (root / "metrics/explanations.json").write_text(stamped(root, {plant_name("explained_model"): {"bleu4": 0.1}}, []))


def _plant_data(root: Path) -> None:
    shutil.copytree(root / "data/rec/collm", root / f"data/rec/{plant_name('rec_variant')}")
    shutil.copy(root / "metrics/collm_train.json", root / f"metrics/{plant_name('rec_variant')}_train.json")
    shutil.copytree(root / "data/cf/mf", root / f"data/cf/{plant_name('cf_model')}")
    path = root / "data/explanations/explanations.parquet"
    frame = read_frame(path, schemas.EXPLANATIONS)
    frame.loc[0, ["model", "explanation", "gold"]] = [plant_name("explanation_model"), plant("explanation"), plant("gold")]
    frame.loc[1, "gold"] = plant("gold")  # the gold of a row is shown once, from its first model
    write_frame(pd.DataFrame(frame), path, schemas.EXPLANATIONS)


def _experiments(root: Path, timeout: float = 60.0) -> tuple[list[dict], None]:
    """`dvc exp show --json` records whose names, params keys and values are markup."""
    def record(rev: str, value) -> dict:
        return {"rev": rev, "data": {"params": {"params.yaml": {"data": {plant("param.key"): value}}}}}
    return [record("workspace", plant("param.value")), {**record("a" * 40, 1), "name": plant("experiment")}], None


class _Page(HTMLParser):
    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.tags, self.attributes, self.texts, self.verdict = set(), [], [], []
        self.in_verdict = False
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes += attrs
        self.in_verdict = self.in_verdict or ("id", "verdict") in attrs

    def handle_endtag(self, tag):
        self.in_verdict = self.in_verdict and tag != "ul"

    def handle_data(self, data):
        self.texts.append(data)
        if self.in_verdict:
            self.verdict.append(data)


@pytest.fixture(scope="module")
def parsed(tmp_path_factory):
    root = write_report_project(tmp_path_factory.mktemp("report_escaping"))
    _plant_metrics(root)
    _plant_data(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setattr(collect, "dvc_experiments", _experiments)
        assert main(["report", "-o", "report.html"]) == 0
    return _Page((root / "report.html").read_text())


def test_planted_markup_makes_no_element_and_no_attribute(parsed):
    assert "script" not in parsed.tags and "img" not in parsed.tags
    assert parsed.tags <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "code", "div", "strong",
                           "table", "thead", "tbody", "tr", "th", "td", "span", "ul", "li", "svg", "rect", "line",
                           "text", "polyline", "circle", "path"}
    names = {name for name, _ in parsed.attributes}
    assert not any(name.startswith("on") or name == "src" for name in names)
    assert names <= {"lang", "charset", "class", "id", "xmlns", "role", "viewbox", "width", "height", "x", "y",
                     "x1", "y1", "x2", "y2", "cx", "cy", "r", "d", "fill", "fill-opacity", "stroke", "stroke-width",
                     "text-anchor", "transform", "points", "data-series", "data-group", "data-row"}


def test_every_planted_field_is_shown_as_text(parsed):
    text = "\n".join(parsed.texts)
    missing = [tag for tag in SHOWN if plant(tag) not in text]
    missing += [tag for tag in SHOWN_NAMES if plant_name(tag) not in text]
    assert missing == []
    assert f"top-N {METRIC}" in text and f"topn_{METRIC}" in text  # a chart title and a column
    verdict = "".join(parsed.verdict)
    assert verdict.startswith("Best LLM row on AUC vs the best CF model: collm - " + plant("verdict") + ": AUC ")


def test_planted_names_in_svg_attributes_are_whole_values(parsed):
    values = {name: {v for n, v in parsed.attributes if n == name} for name in ("data-series", "data-group", "data-row")}
    model = plant_name("model")
    assert {model, plant_name("rec_variant"), plant_name("cf_model")} <= values["data-series"]  # ROC, loss curves
    assert model in values["data-group"] and model in values["data-row"]  # per-user AUC box, top-N dot
