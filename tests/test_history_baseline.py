"""The training-free baselines and their stage: history (liked rate over the prompt's history,
popularity tie-break) and popularity (train counts)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from params_base import section
from pipeline.ranking.catalogue import ranking_users

from pipeline.baselines.history import history_scores, recent_liked_rate, tie_break_scale
from synthetic_ingest import write_synthetic_ingest

ROOT = Path(__file__).resolve().parents[1]


def test_rate_uses_only_the_last_items_and_empty_history_is_nan():
    histories = [np.array([0, 0, 1, 1, 1]), np.array([1, 0]), np.array([], dtype=np.int8), np.array([1])]
    rate = recent_liked_rate(histories, last=3)
    assert rate[:2].tolist() == [1.0, 0.5] and np.isnan(rate[2]) and rate[3] == 1.0


@pytest.mark.parametrize("fallback", [0.5862, 0.6000001, 0.5])
def test_popularity_never_reorders_different_rates_even_in_float32(fallback):
    last = 5
    # every achievable rate: k liked of the last m shown, and an empty history (the fallback)
    histories = [np.r_[np.ones(k), np.zeros(m - k)] for m in range(1, last + 1) for k in range(m + 1)] + [np.zeros(0)]
    rate = np.r_[recent_liked_rate(histories[:-1], last), fallback]
    popularity = np.array([0, 1000])  # item 1 as popular as can be, item 0 never seen in train

    def scores(item):
        return history_scores(histories, np.full(len(histories), item), popularity, last, fallback).astype(np.float32)

    most, least = scores(1), scores(0)
    lower, higher = np.nonzero(rate[:, None] < rate[None, :])
    assert np.all(most[lower] <= least[higher])  # float32 may merge rates 1e-7 apart, never swap them
    apart = rate[higher] - rate[lower] > 1e-6
    assert np.all(most[lower][apart] < least[higher][apart])
    if tie_break_scale(last, fallback) > 1e-4:  # a fallback 1e-7 from some k/m leaves no float32 room
        assert np.all(most > least)


def test_equal_rates_are_ordered_by_train_popularity():
    histories = [np.array([1, 0])] * 3
    scores = history_scores(histories, np.array([0, 1, 2]), np.array([5, 0, 9]), last=5, fallback=0.3)
    assert np.argsort(scores).tolist() == [1, 0, 2]
    assert scores.max() - 0.5 < tie_break_scale(5, 0.3)


def test_stage_scores_every_row_and_candidate(tmp_path):
    interactions = write_synthetic_ingest(tmp_path)
    prompt = section("rec.prompt", history_items=3, version="v1")  # the stage checks rec.prompt whole
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"rec": {"prompt": prompt}, "ranking": section("ranking")}))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "stages.baselines"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    predictions = pd.read_parquet(tmp_path / "data/predictions/history.parquet")
    pointwise = predictions[predictions["row"] >= 0].set_index("row")
    assert sorted(pointwise.index) == sorted(interactions["row"])
    train = interactions[interactions["split"] == "train"]
    popularity = train["item"].value_counts().reindex(range(50), fill_value=0).to_numpy()
    expected = history_scores(interactions["history_labels"].tolist(), interactions["item"].to_numpy(),
                              popularity, 3, train["label"].mean())
    np.testing.assert_allclose(pointwise.loc[interactions["row"], "score"], expected, rtol=1e-6)
    no_history = interactions["history_labels"].map(len) == 0
    assert no_history.any()
    assert (pointwise.loc[interactions.loc[no_history, "row"], "score"] - train["label"].mean()).abs().max() < 0.05
    assert (predictions["row"] >= 0).all()  # no top-N: within a user its order would be popularity's

    by_count = pd.read_parquet(tmp_path / "data/predictions/popularity.parquet")
    rows = by_count[by_count["row"] >= 0].set_index("row")
    assert sorted(rows.index) == sorted(interactions["row"])
    np.testing.assert_array_equal(rows.loc[interactions["row"], "score"], popularity[interactions["item"]])
    candidates = pd.read_parquet(tmp_path / "data/ingest/topn_candidates.parquet")
    topn = by_count[by_count["row"] == -1].merge(candidates, on=["user", "item"], validate="one_to_one")
    assert len(topn) == len(candidates) and topn["user"].nunique() > 1
    np.testing.assert_array_equal(topn["score"], popularity[topn["item"]])
    # the full catalogue: every user's liked test items ranked by the same counts, ties against them
    ranks = pd.read_parquet(tmp_path / "data/ranking/popularity.parquet")
    users = ranking_users(interactions, 50)
    assert sorted(zip(ranks["task"], ranks["user"], ranks["item"])) == sorted(
        zip(users.targets["task"], users.targets["user"], users.targets["item"]))
    for row in ranks.itertuples():
        candidates = users.candidates(int(np.flatnonzero(users.users == row.user)[0]))
        assert row.rank == (popularity[candidates] >= popularity[row.item]).sum() - 1
