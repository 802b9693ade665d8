"""Per-user ranking of each user's own rows by score: NDCG@K, MAP@K, HR@K (relevance = label).

Conventions (deterministic; docs/evaluation.md, "Metric definitions"):
- Users are counted only when they have both a positive and a negative row: a user without
  positives has no defined NDCG (ideal DCG = 0), and a user with only positives scores 1.0 under
  any model, so neither says anything about the model. The same users as UAUC.
- Ties are broken pessimistically: among rows with equal scores, negatives rank before positives.
  A constant-score model therefore gets the worst possible value, never a lucky one.
- K larger than a user's list: the whole list counts; ideal DCG and the AP denominator use
  min(K, number of positives).
"""
from __future__ import annotations

import numpy as np

from pipeline.metrics.classification import group_indices


def ranked_labels(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Labels (N,) ordered by descending score, ties with negatives first."""
    labels = np.asarray(labels).astype(np.int64)
    order = np.lexsort((labels, -np.asarray(scores, dtype=np.float64)))
    return labels[order]


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


def per_user_ranking(
    users: np.ndarray, labels: np.ndarray, scores: np.ndarray, ks: list[int]
) -> dict[str, np.ndarray]:
    """Per-user ndcg@k, map@k and hr@k, users in ascending id order, each (n_users,); NaN for a
    user without both classes (the metric's mean skips them)."""
    lists = [ranked_labels(labels[idx], scores[idx]) for idx in group_indices(users)]
    both = [0 < ranked.sum() < ranked.size for ranked in lists]
    result: dict[str, np.ndarray] = {}
    for k in ks:
        for name, metric in (("ndcg", ndcg_at_k), ("map", average_precision_at_k), ("hr", hit_at_k)):
            result[f"{name}@{k}"] = np.array(
                [metric(ranked, k) if ok else np.nan for ranked, ok in zip(lists, both)], dtype=np.float64
            )
    return result
