"""Evaluate stage: one model's metrics on the `evaluate.subset` rows, and its ROC curve.

Usage: python -m stages.evaluate <model>
Reads data/predictions/<model>.parquet and data/ingest/{interactions,subsets,topn_candidates}.parquet.
Writes metrics/<model>.json (flat keys, for `dvc metrics show`) and plots/roc/<model>.json.
"""
from __future__ import annotations

import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from pipeline.artifacts import read_frame, write_json
from pipeline.metrics.report import model_metrics, pointwise_scores, topn_scores
from pipeline.schemas import INTERACTIONS, PREDICTIONS, SPLITS, SUBSET_ROWS, TOPN_CANDIDATES
from stages.params import load_section

INGEST = Path("data/ingest")


class EvaluateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    models: list[str]  # one evaluate@<model> stage each (not read here)
    subset: str  # evaluation subset (valid_small, test_small, test_tiny) or a whole split
    ks: list[int]
    roc_points: int


def evaluation_rows(subset: str, interactions, subsets):
    """Row ids of a named subset, or of every row of a split when `subset` is a split name."""
    if subset in SPLITS:
        return interactions.loc[interactions["split"] == subset, "row"].to_numpy()
    rows = subsets.loc[subsets["subset"] == subset, "row"].to_numpy()
    if rows.size == 0:
        raise ValueError(f"{INGEST / 'subsets.parquet'}: subset '{subset}' is empty or unknown")
    return rows


def main(name: str) -> None:
    params = load_section("evaluate", EvaluateParams)
    predictions_path = Path("data/predictions") / f"{name}.parquet"
    predictions = read_frame(predictions_path, PREDICTIONS)
    interactions = read_frame(INGEST / "interactions.parquet", INTERACTIONS)
    subsets = read_frame(INGEST / "subsets.parquet", SUBSET_ROWS)
    rows = evaluation_rows(params.subset, interactions, subsets)
    scores = pointwise_scores(predictions, interactions, rows, str(predictions_path))
    candidates = read_frame(INGEST / "topn_candidates.parquet", TOPN_CANDIDATES)
    topn = topn_scores(predictions, candidates, str(predictions_path))
    metrics, roc = model_metrics(scores, topn, params.ks, params.roc_points)
    write_json(metrics, Path("metrics") / f"{name}.json")
    write_json({"roc": [dict(zip(roc, point)) for point in zip(*roc.values())]},
               Path("plots/roc") / f"{name}.json")
    print(f"evaluate {name}: {params.subset} {metrics['n_rows']} rows, {metrics['n_users']} users: "
          f"AUC {_shown(metrics['auc'])} UAUC {_shown(metrics['uauc'])}; wrote metrics/{name}.json")


def _shown(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m stages.evaluate <model>")
    main(sys.argv[1])
