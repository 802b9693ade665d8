"""Interaction-count filters: the paper's one-pass filter (counts taken once over the full
data, then users and items below the minimum dropped together) or an iterative k-core."""
from __future__ import annotations

import numpy as np


def count_filter_mask(
    user: np.ndarray, item: np.ndarray, mode: str, min_user: int, min_item: int
) -> tuple[np.ndarray, int]:
    """Boolean mask of rows kept, and the number of counting rounds (0 for mode 'none').

    one_pass: a row stays when its user has >= min_user rows and its item >= min_item rows in the
    unfiltered data (after one pass some may fall below again, as in the paper).
    k_core: repeat that until every kept user and item meets its minimum.
    """
    keep = np.ones(len(user), dtype=bool)
    if mode == "none":
        return keep, 0
    if mode not in ("one_pass", "k_core"):
        raise ValueError(f"ingest.filter.mode: unknown mode {mode!r}")
    rounds = 0
    while True:
        rounds += 1
        user_counts = np.bincount(user[keep], minlength=int(user.max(initial=-1)) + 1)
        item_counts = np.bincount(item[keep], minlength=int(item.max(initial=-1)) + 1)
        next_keep = keep & (user_counts[user] >= min_user) & (item_counts[item] >= min_item)
        changed = bool((next_keep != keep).any())
        keep = next_keep
        if mode == "one_pass" or not changed:
            return keep, rounds
