"""Sampled top-N: each user has one positive among sampled negative candidates.

The positive's rank counts the negatives scored strictly above it plus, pessimistically, the
negatives tied with it. HR@K = rank < K; NDCG@K = 1/log2(rank + 2) when rank < K, else 0.
"""
from __future__ import annotations

import numpy as np

from pipeline.metrics.classification import group_indices


def positive_ranks(users: np.ndarray, positive: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """0-based rank of each user's single positive among the user's candidates, (n_users,)."""
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive).astype(bool)
    ranks = []
    for idx in group_indices(users):
        pos = idx[positive[idx]]
        if pos.size != 1:
            raise ValueError(
                f"top-N candidates of user {users[idx[0]]}: {pos.size} positives, expected exactly 1"
            )
        negatives = scores[idx[~positive[idx]]]
        ranks.append(int((negatives >= scores[pos[0]]).sum()))
    return np.asarray(ranks, dtype=np.int64)


def topn_per_user(ranks: np.ndarray, ks: list[int]) -> dict[str, np.ndarray]:
    """Per-user topn_hr@k and topn_ndcg@k from the positives' 0-based ranks, each (n_users,)."""
    result: dict[str, np.ndarray] = {}
    for k in ks:
        hit = ranks < k
        result[f"topn_hr@{k}"] = hit.astype(np.float64)
        result[f"topn_ndcg@{k}"] = np.where(hit, 1.0 / np.log2(ranks + 2), 0.0)
    return result
