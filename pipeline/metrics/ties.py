"""Tied scores: how much of a model's ranking is decided by a tie rule rather than its scores.

AUC counts a tied positive/negative pair as one half, the ranking metrics rank tied negatives
first: a model with many ties (coarse or constant scores) is measured mostly by those rules.
"""
from __future__ import annotations

import numpy as np


def tied_pairs(users: np.ndarray, scores: np.ndarray) -> dict[str, int]:
    """Pairs of rows i < j with exactly equal scores, over all rows (`pairs`) and among rows of
    the same user (`pairs_within_users`), and the number of distinct scores."""
    scores = np.asarray(scores, dtype=np.float64)
    _, per_score = np.unique(scores, return_counts=True)
    # Rows of one user with one score: unique (user, score) pairs; int32 user ids are exact in float64.
    keys = np.stack([np.asarray(users, dtype=np.float64), scores], axis=1)
    _, per_user_score = np.unique(keys, axis=0, return_counts=True)
    return {
        "pairs": _pairs(per_score),
        "pairs_within_users": _pairs(per_user_score),
        "distinct_scores": int(per_score.size),
    }


def _pairs(run_lengths: np.ndarray) -> int:
    run_lengths = run_lengths.astype(np.int64)
    return int((run_lengths * (run_lengths - 1) // 2).sum())
