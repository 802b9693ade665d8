"""The evaluate stage's CLI on tiny ingest artifacts and hand-made predictions."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from pipeline.artifacts import write_frame
from pipeline.schemas import PREDICTIONS
from synthetic_ingest import write_synthetic_ingest

ROOT = Path(__file__).resolve().parents[1]
PARAMS = """evaluate:
  models: [cfmodel, llmmodel]
  subset: test_small
  ks: [1, 5, 10]
  roc_points: 50
"""


@pytest.fixture()
def project(tmp_path):
    interactions = write_synthetic_ingest(tmp_path)
    (tmp_path / "params.yaml").write_text(PARAMS)
    return tmp_path, interactions


def run_evaluate(directory: Path, model: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "stages.evaluate", model], cwd=directory, env=env,
                          capture_output=True, text=True)


def scores_for(interactions: pd.DataFrame, rows: pd.Series) -> np.ndarray:
    rng = np.random.default_rng(1)  # informative but noisy: label + noise, rounded to force ties
    labels = interactions.set_index("row").loc[rows, "label"].to_numpy()
    return np.round(labels + rng.normal(scale=1.0, size=len(rows)), 1)


def ndcg_at_5_by_hand(rows: pd.DataFrame, scores: pd.Series) -> float:
    """Mean NDCG@5 over users with both labels; equal scores rank negatives first (pessimistic)."""
    values = []
    for _, user in rows.assign(score=scores.to_numpy()).groupby("user"):
        if 0 < user["label"].sum() < len(user):
            ranked = [label for _, label in sorted(zip(-user["score"], user["label"]))][:5]
            dcg = sum(label / math.log2(i + 2) for i, label in enumerate(ranked))
            ideal = sum(1 / math.log2(i + 2) for i in range(min(5, user["label"].sum())))
            values.append(dcg / ideal)
    return sum(values) / len(values)


def test_cf_style_predictions_give_pointwise_and_topn_metrics(project):
    directory, interactions = project
    candidates = pd.read_parquet(directory / "data/ingest/topn_candidates.parquet")
    pointwise = interactions[["row", "user", "item"]].assign(score=scores_for(interactions, interactions["row"]))
    # User u's positive scores 2.0, below (u % 3) of its negatives (2.5): its 0-based rank is u % 3.
    negative_index = candidates[candidates["positive"] == 0].groupby("user").cumcount()
    above = negative_index.reindex(candidates.index, fill_value=99) < candidates["user"] % 3
    topn = candidates[["user", "item"]].assign(row=-1, score=np.where(above, 2.5, candidates["positive"] * 2.0))
    write_frame(pd.concat([pointwise, topn]), directory / "data/predictions/cfmodel.parquet", PREDICTIONS)
    result = run_evaluate(directory, "cfmodel")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((directory / "metrics/cfmodel.json").read_text())
    subset = pd.read_parquet(directory / "data/ingest/subsets.parquet").query("subset == 'test_small'")
    rows = interactions.set_index("row").loc[subset["row"]]
    expected_auc = roc_auc_score(rows["label"], pointwise.set_index("row").loc[subset["row"], "score"])
    assert metrics["auc"] == pytest.approx(expected_auc)
    assert metrics["n_rows"] == len(subset)
    assert metrics["n_users"] == rows["user"].nunique()
    assert {"uauc", "ndcg@5", "map@5", "hr@5", "ndcg@10"} <= set(metrics)
    ranks = candidates["user"].drop_duplicates() % 3
    assert metrics["topn_hr@1"] == pytest.approx((ranks == 0).mean())
    assert metrics["topn_ndcg@5"] == pytest.approx((1 / np.log2(ranks + 2)).mean())
    assert metrics["ndcg@5"] == pytest.approx(ndcg_at_5_by_hand(rows, pointwise.set_index("row").loc[subset["row"], "score"]))
    roc = json.loads((directory / "plots/roc/cfmodel.json").read_text())["roc"]
    assert len(roc) <= 50 and roc[0] == {"fpr": 0.0, "tpr": 0.0} and roc[-1] == {"fpr": 1.0, "tpr": 1.0}


def test_llm_style_predictions_without_topn_have_no_topn_keys(project):
    directory, interactions = project
    rows = interactions[interactions["split"] != "train"]
    predictions = rows[["row", "user", "item"]].assign(score=scores_for(interactions, rows["row"]))
    write_frame(predictions, directory / "data/predictions/llmmodel.parquet", PREDICTIONS)
    result = run_evaluate(directory, "llmmodel")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((directory / "metrics/llmmodel.json").read_text())
    assert "auc" in metrics and not any(key.startswith("topn") for key in metrics)


def test_missing_subset_rows_are_an_error(project):
    directory, interactions = project
    subset = pd.read_parquet(directory / "data/ingest/subsets.parquet").query("subset == 'test_small'")
    dropped = int(subset["row"].iloc[3])
    rows = interactions[(interactions["split"] == "test") & (interactions["row"] != dropped)]
    predictions = rows[["row", "user", "item"]].assign(score=0.5)
    write_frame(predictions, directory / "data/predictions/llmmodel.parquet", PREDICTIONS)
    result = run_evaluate(directory, "llmmodel")
    assert result.returncode != 0
    assert "llmmodel.parquet: no score for 1 of" in result.stderr and str(dropped) in result.stderr
    assert not (directory / "metrics/llmmodel.json").exists()
