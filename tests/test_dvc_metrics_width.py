"""`dvc metrics show` on the default fits a 200-column terminal and shows the headline metrics: the
real dvc, in a scratch git + DVC repo holding the project's dvc.yaml and params.yaml and a headline
file per evaluated model, written by the library functions evaluate writes them with (split_report,
the provenance stamp)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import yaml

from pipeline import registry
from pipeline.metrics.report import HEADLINE_COUNTS, split_report
from pipeline.provenance import stamp
from project_copy import run_dvc

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 200  # columns


def synthetic_report(name: str, headline: list[str], rng: np.random.Generator) -> dict:
    """A model_report's all-users part as evaluate writes it for `name`: every headline metric the
    model measures (a top-N-only model has no AUC/UAUC; a pointwise-only one no topn_*), with its
    interval, and the counts, at the default run's sizes (the widest numbers DVC prints)."""
    entry = registry.get_model(name)
    report = {"n_rows": 597 if entry.pointwise else 0, "n_users": 162 if entry.pointwise else 0}
    if entry.topn:
        report["topn_users"] = 148
    if entry.ranks:
        report["full_users"] = 148
    reranker = entry.family in ("llm", "experts", "fused")  # ranks the liked items only, not the next item
    for metric in headline:
        if (metric in ("auc", "uauc") or "@" in metric and "_" not in metric) and not entry.pointwise:
            continue
        if metric.startswith("topn_") and not entry.topn:
            continue
        if metric.startswith(("full_", "next_")) and not entry.ranks or metric.startswith("next_") and reranker:
            continue
        low, value, high = np.sort(rng.uniform(0.01, 0.99, 3))
        report.update({metric: value, f"{metric}_low": low, f"{metric}_high": high})
    report.update(warm={"n_rows": 1}, cold={"n_rows": 1}, all_k={"hr@1": 0.5}, ties={"pairs": 0},
                  vs_best_cf={"model": "sasrec", "auc": -0.1, "auc_low": -0.2, "auc_high": -0.05})
    return report


def test_dvc_metrics_show_fits_200_columns_and_shows_the_headline(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    headline = params["evaluate"]["headline"]
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(git + ["init", "-q"], cwd=tmp_path, check=True)
    run_dvc(tmp_path, "init", "-q")
    declared = [next(iter(out)) for body in yaml.safe_load((tmp_path / "dvc.yaml").read_text())["stages"].values()
                for out in (body.get("do", body).get("metrics") or [])]
    assert sorted(declared) == sorted(f"metrics/{name}.json" for name in registry.evaluated())  # evaluate's only
    rng = np.random.default_rng(0)
    for name in registry.evaluated():
        top, _ = split_report(synthetic_report(name, headline, rng), headline)
        path = tmp_path / "metrics" / f"{name}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps({**top, **stamp("0123abcd", ["evaluate"], params, dvc_metric=True)}))

    shown = run_dvc(tmp_path, "metrics", "show")
    lines = shown.splitlines()
    assert max(map(len, lines)) <= WIDTH, f"{max(map(len, lines))} columns:\n{shown}"
    header = lines[0].split()
    assert {*headline, *HEADLINE_COUNTS, "ingest", "params"} <= set(header), header
    assert not [column for column in header if column.endswith(("_low", "_high")) or "interval" in column]
    assert len(lines) == 1 + len(registry.evaluated())  # a row per model
