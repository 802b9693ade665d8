"""Per-user ranking of each user's own rows by score: NDCG@K, MAP@K, HR@K (relevance = label).

Conventions (deterministic, documented in the README):
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
) -> dict[str, float]:
    """Mean over users with both classes of ndcg@k, map@k and hr@k, plus `n_rank_users`."""
    lists = []
    for idx in group_indices(users):
        ranked = ranked_labels(labels[idx], scores[idx])
        if 0 < ranked.sum() < ranked.size:
            lists.append(ranked)
    result: dict[str, float] = {"n_rank_users": len(lists)}
    for k in ks:
        for name, metric in (("ndcg", ndcg_at_k), ("map", average_precision_at_k), ("hr", hit_at_k)):
            values = [metric(ranked, k) for ranked in lists]
            result[f"{name}@{k}"] = float(np.mean(values)) if values else float("nan")
    return result
