"""Per-user ranking of each user's own rows by score: NDCG@K, MAP@K, HR@K (relevance = label).

Two conventions (docs/evaluation.md, "Metric definitions"; `evaluate.conventions`):
- `project` (the default, deterministic):
  - Users are counted only when they have both a positive and a negative row: a user without
    positives has no defined NDCG (ideal DCG = 0), and a user with only positives scores 1.0
    under any model, so neither says anything about the model. The same users as UAUC.
  - Ties are broken pessimistically: among rows with equal scores, negatives rank before
    positives. A constant-score model therefore gets the worst possible value, never a lucky one.
  - K larger than a user's list: the whole list counts; ideal DCG and the AP denominator use
    min(K, number of positives).
- `reference`: ThinkRec's (`minigpt4/tasks/rec_base_task.py`, `reorganize_by_user`, `hr_at_k`,
  `ndcg_at_k`, `map_at_k`): every user with at least 2 rows counts, single-class users included
  (a user without positives scores 0 on all three); AP divides by all the user's positives;
  equal scores keep the rows' order (row id ascending), a stable version of the reference's
  `np.argsort(-pred)`, whose order among ties numpy leaves unspecified.
"""
from __future__ import annotations

from typing import Callable, Literal

import numpy as np

from pipeline.metrics.classification import group_indices

Conventions = Literal["project", "reference"]
CONVENTIONS: tuple[str, ...] = ("project", "reference")


def ranked_labels(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Labels (N,) ordered by descending score, ties with negatives first."""
    labels = np.asarray(labels).astype(np.int64)
    order = np.lexsort((labels, -np.asarray(scores, dtype=np.float64)))
    return labels[order]


def ranked_labels_in_row_order(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Labels (N,) ordered by descending score, ties in their input order (the reference's)."""
    labels = np.asarray(labels).astype(np.int64)
    return labels[np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")]


def ndcg_at_k(ranked: np.ndarray, k: int) -> float:
    """NDCG@k of one ranked binary relevance list (gain = label, discount = 1/log2(rank+1))."""
    discounts = 1.0 / np.log2(np.arange(2, ranked.size + 2))
    dcg = float((ranked[:k] * discounts[:k]).sum())
    ideal = float(discounts[: min(k, int(ranked.sum()))].sum())
    return dcg / ideal if ideal > 0 else float("nan")


def average_precision_at_k(ranked: np.ndarray, k: int) -> float:
    """AP@k = sum over hits i <= k of precision@i, divided by min(k, number of positives)."""
    n_pos = int(ranked.sum())
    if n_pos == 0:
        return float("nan")
    top = ranked[:k]
    precision = np.cumsum(top) / np.arange(1, top.size + 1)
    return float((precision * top).sum() / min(k, n_pos))


def hit_at_k(ranked: np.ndarray, k: int) -> float:
    """1.0 when a positive is among the first k, else 0.0."""
    return float(ranked[:k].sum() > 0)


def reference_ndcg_at_k(ranked: np.ndarray, k: int) -> float:
    """ThinkRec's NDCG@k: ndcg_at_k, but 0.0 for a list without positives."""
    return ndcg_at_k(ranked, k) if ranked.sum() > 0 else 0.0


def reference_average_precision_at_k(ranked: np.ndarray, k: int) -> float:
    """ThinkRec's AP@k: sum over hits i <= k of precision@i, divided by ALL the list's positives
    (not min(k, positives), so a user with more positives than k cannot reach 1.0); 0.0 without
    positives."""
    n_pos = int(ranked.sum())
    if n_pos == 0:
        return 0.0
    top = ranked[:k]
    precision = np.cumsum(top) / np.arange(1, top.size + 1)
    return float((precision * top).sum() / n_pos)


RankMetric = Callable[[np.ndarray, int], float]
METRICS: dict[str, tuple[tuple[str, RankMetric], ...]] = {
    "project": (("ndcg", ndcg_at_k), ("map", average_precision_at_k), ("hr", hit_at_k)),
    "reference": (("ndcg", reference_ndcg_at_k), ("map", reference_average_precision_at_k), ("hr", hit_at_k)),
}


def per_user_ranking(
    users: np.ndarray, labels: np.ndarray, scores: np.ndarray, ks: list[int],
    conventions: Conventions = "project",
) -> dict[str, np.ndarray]:
    """Per-user ndcg@k, map@k and hr@k, users in ascending id order, each (n_users,); NaN for a
    user the convention does not count (the metric's mean skips them): `project` counts users
    with both classes, `reference` users with at least 2 rows."""
    if conventions not in CONVENTIONS:
        raise ValueError(f"unknown ranking conventions '{conventions}': expected one of {list(CONVENTIONS)}")
    labels, scores = np.asarray(labels), np.asarray(scores)
    if conventions == "project":
        lists = [ranked_labels(labels[idx], scores[idx]) for idx in group_indices(users)]
        counted = [0 < ranked.sum() < ranked.size for ranked in lists]
    else:
        lists = [ranked_labels_in_row_order(labels[idx], scores[idx]) for idx in group_indices(users)]
        counted = [ranked.size >= 2 for ranked in lists]
    result: dict[str, np.ndarray] = {}
    for k in ks:
        for name, metric in METRICS[conventions]:
            result[f"{name}@{k}"] = np.array(
                [metric(ranked, k) if ok else np.nan for ranked, ok in zip(lists, counted)], dtype=np.float64
            )
    return result
