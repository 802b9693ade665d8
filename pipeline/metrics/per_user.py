"""A model's metrics on fixed rows, decomposed by user, so that any weighting of the users (a
bootstrap resample, only the warm or only the cold users) gives every metric by a matrix product
instead of a recomputation.

UAUC, NDCG/MAP/HR@K and top-N HR/NDCG@K are means over users of a per-user value; AUC pools rows,
so the table keeps the rows in score order and gives each row its user's weight
(classification.weighted_auc). Weight 1 for every user gives the plain metrics.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.metrics.classification import auc, group_indices, score_runs, weighted_auc
from pipeline.metrics.ranking import Conventions, per_user_ranking
from pipeline.metrics.topn import positive_ranks, topn_per_user

MAX_WEIGHTED_CELLS = 1 << 22  # rows x weight vectors per weighted-AUC block (32 MiB of float64)


@dataclass(frozen=True)
class UserTable:
    users: np.ndarray  # (U,) user ids, ascending
    rows: np.ndarray  # (U,) rows (or top-N candidates) of each user
    positives: np.ndarray  # (U,) positive rows of each user
    values: dict[str, np.ndarray]  # metric -> (U,) per-user value, NaN where the user does not count
    ranked_users: np.ndarray | None = None  # (N,) user index of each row, rows in ascending score order
    ranked_labels: np.ndarray | None = None  # (N,) labels in that order
    runs: np.ndarray | None = None  # (G,) start of each run of equal scores in that order


def pointwise_table(users: np.ndarray, labels: np.ndarray, scores: np.ndarray, ks: list[int],
                    conventions: Conventions = "project") -> UserTable:
    """Per-user uauc and ndcg/map/hr@k of pointwise rows (N,), plus the rows ranked for AUC.
    `conventions` picks which users the ranking metrics count and how (pipeline/metrics/ranking.py);
    uauc is the same under both (the reference also averages per-user AUC over users with both
    classes)."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    groups = group_indices(users)
    values = {"uauc": np.array([auc(labels[idx], scores[idx]) for idx in groups], dtype=np.float64)}
    values.update(per_user_ranking(users, labels, scores, ks, conventions))
    ids, user_index = np.unique(users, return_inverse=True)
    order, runs = score_runs(scores)
    return UserTable(
        users=ids,
        rows=np.bincount(user_index, minlength=ids.size),
        positives=np.bincount(user_index, weights=labels, minlength=ids.size).astype(np.int64),
        values=values,
        ranked_users=user_index[order],
        ranked_labels=labels[order],
        runs=runs,
    )


def topn_table(users: np.ndarray, positive: np.ndarray, scores: np.ndarray, ks: list[int]) -> UserTable:
    """Per-user topn_hr@k and topn_ndcg@k of sampled top-N candidates (N,)."""
    ids, counts = np.unique(users, return_counts=True)
    ranks = positive_ranks(users, positive, scores)
    return UserTable(users=ids, rows=counts, positives=np.ones(ids.size, dtype=np.int64),
                     values=topn_per_user(ranks, ks))


def weighted_metrics(table: UserTable, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric of `table` under user weights (B, U): metric -> (B,), NaN where undefined
    (no weighted user counts for it)."""
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    result = {}
    for name, values in table.values.items():
        counted = ~np.isnan(values)
        total = weights @ counted
        with np.errstate(invalid="ignore", divide="ignore"):
            result[name] = np.where(total > 0, (weights @ np.where(counted, values, 0.0)) / total, np.nan)
    if table.ranked_users is not None:
        block = max(1, MAX_WEIGHTED_CELLS // max(table.ranked_users.size, 1))
        result["auc"] = np.concatenate([
            weighted_auc(table.ranked_labels, table.runs, weights[start:start + block, table.ranked_users])
            for start in range(0, weights.shape[0], block)
        ])
    return result
