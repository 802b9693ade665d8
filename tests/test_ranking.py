"""Full-catalogue ranking (pipeline/ranking, pipeline/metrics/full.py): who is ranked against what,
ranks with pessimistic ties, a re-ranker's misses, and the metrics against hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import BadInput
from pipeline.metrics.full import full_table
from pipeline.ranking.catalogue import ranking_users
from pipeline.ranking.lists import reranked_order, retrieve
from pipeline.ranking.ranks import constant_ranks, list_ranks, target_ranks, vector_ranks


def _interactions(rows: list[tuple[int, int, int, str]]) -> pd.DataFrame:
    """(user, item, label, split) in time order; row = position."""
    frame = pd.DataFrame(rows, columns=["user", "item", "label", "split"])
    return frame.assign(row=np.arange(len(frame), dtype=np.int64),
                        history_items=[[] for _ in rows], history_labels=[[] for _ in rows])


INTERACTIONS = _interactions([
    (0, 0, 1, "train"), (0, 1, 0, "train"), (1, 2, 1, "train"), (0, 2, 1, "valid"),
    (0, 3, 0, "test"), (0, 4, 1, "test"), (0, 5, 1, "test"), (1, 0, 0, "test"), (2, 1, 1, "train"),
])


def test_users_targets_and_candidates():
    users = ranking_users(INTERACTIONS, n_items=7)
    assert users.users.tolist() == [0, 1]  # user 2 has no test row
    assert users.first_rows.tolist() == [4, 7]
    assert [s.tolist() for s in users.seen] == [[0, 1, 2], [2]]
    assert users.candidates(0).tolist() == [3, 4, 5, 6] and users.candidates(1).tolist() == [0, 1, 3, 4, 5, 6]
    topn = users.targets[users.targets["task"] == "topn"]
    assert list(zip(topn["user"], topn["item"])) == [(0, 4), (0, 5)]  # user 1's test row is not liked
    nxt = users.targets[users.targets["task"] == "next"]
    assert list(zip(nxt["user"], nxt["item"])) == [(0, 3), (1, 0)]  # the first test row, liked or not
    assert users.task_users("topn").tolist() == [0]


def test_a_seeded_user_sample_is_the_same_every_time():
    many = _interactions([(u, u % 5, 1, "test") for u in range(40)])
    first = ranking_users(many, 5, max_users=7, seed=3).users
    assert first.size == 7 and first.tolist() == ranking_users(many, 5, max_users=7, seed=3).users.tolist()
    assert first.tolist() != ranking_users(many, 5, max_users=7, seed=4).users.tolist()


def test_ties_count_against_the_target():
    scores = np.array([0.5, 0.9, 0.1, 0.9, 0.3])
    assert target_ranks(scores, np.array([0, 1, 2, 3]), np.array([1, 3, 0, 2])).tolist() == [1, 1, 2, 3]
    users = ranking_users(INTERACTIONS, n_items=7)
    ranks = constant_ranks(np.zeros(7), users)  # a constant model ranks every target last
    last = ranks["candidates"] - 1
    assert (ranks["rank"] == last).all()


def test_vector_ranks_match_a_sort_of_the_whole_catalogue():
    rng = np.random.default_rng(0)
    users = ranking_users(INTERACTIONS, n_items=7)
    states, items = rng.normal(size=(2, 3)), rng.normal(size=(7, 3))
    ranks = vector_ranks(states, items, users)
    for row in ranks.itertuples():
        index = int(np.flatnonzero(users.users == row.user)[0])
        candidates = users.candidates(index)
        order = candidates[np.argsort(-(items[candidates] @ states[index]), kind="stable")]
        assert row.rank == order.tolist().index(row.item) and row.candidates == candidates.size


def test_a_reranker_ranks_its_list_and_misses_the_rest():
    users = ranking_users(INTERACTIONS, n_items=7)
    ranks = list_ranks(users, {0: np.array([5, 6, 3])}, ("topn",))
    assert dict(zip(ranks["item"], ranks["rank"])) == {4: -1, 5: 0}
    proposed = retrieve(np.array([1.0, 0.0]), np.array([[0.0, 0], [2, 0], [2, 0], [1, 0]]), np.array([0, 1, 2, 3]), 3)
    assert proposed["item"].tolist() == [1, 2, 3] and proposed["cf_rank"].tolist() == [1, 2, 3]  # ties by item id
    assert reranked_order(np.array([0.2, 0.7, 0.7]), np.array([1, 2, 3])).tolist() == [1, 2, 0]  # ties by retriever rank


def test_metrics_by_hand():
    targets = pd.DataFrame({"task": ["topn"] * 3, "user": [1, 1, 2], "item": [5, 6, 7]})
    ranks = targets.assign(rank=[0, 3, -1], candidates=20)
    table = full_table(ranks, targets, "topn", [1, 5], "x.parquet", reranker=True)
    values = {name: value.tolist() for name, value in table.values.items()}
    assert values["full_hr@1"] == [1.0, 0.0] and values["full_hr@5"] == [1.0, 0.0]
    assert values["full_recall@5"] == [1.0, 0.0] and values["full_recall@1"] == [0.5, 0.0]
    ideal = 1 + 1 / math.log2(3)
    assert values["full_ndcg@5"] == pytest.approx([(1 + 1 / math.log2(5)) / ideal, 0.0])
    assert values["full_retrieved"] == [1.0, 0.0]
    assert "full_retrieved" not in full_table(ranks, targets, "topn", [1], "x.parquet").values


def test_a_missing_target_names_the_file():
    targets = pd.DataFrame({"task": ["topn"] * 2, "user": [1, 1], "item": [5, 6]})
    ranks = targets.iloc[:1].assign(rank=[0], candidates=20)
    with pytest.raises(BadInput, match=r"data/ranking/m.parquet: task 'topn' has 1 ranked targets, the evaluation 2 "
                                        r"\(user 1, item 6 not ranked\)"):
        full_table(ranks, targets, "topn", [1], "data/ranking/m.parquet")
