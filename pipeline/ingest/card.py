"""The dataset card: counts per split and subset, what the filters removed, what was skipped."""
from __future__ import annotations

import numpy as np

from pipeline.schemas import SPLITS


def group_stats(user: np.ndarray, item: np.ndarray, label: np.ndarray) -> dict:
    """rows, distinct users and items, and the fraction of liked rows."""
    return {
        "rows": int(len(user)),
        "users": int(len(np.unique(user))),
        "items": int(len(np.unique(item))),
        "positive_rate": round(float(label.mean()), 4) if len(label) else None,
    }


def split_stats(user: np.ndarray, item: np.ndarray, label: np.ndarray, split: np.ndarray) -> dict:
    """Per split group_stats, plus how many of its users and items train never saw (cold)."""
    train_users = set(np.unique(user[split == 0]).tolist())
    train_items = set(np.unique(item[split == 0]).tolist())
    stats = {}
    for code, name in enumerate(SPLITS):
        mask = split == code
        stats[name] = group_stats(user[mask], item[mask], label[mask])
        if code:
            stats[name]["users_not_in_train"] = len(set(np.unique(user[mask]).tolist()) - train_users)
            stats[name]["items_not_in_train"] = len(set(np.unique(item[mask]).tolist()) - train_items)
    return stats


def subset_stats(subsets: dict[str, np.ndarray], user: np.ndarray, item: np.ndarray, label: np.ndarray) -> dict:
    """group_stats of each subset (rows are indices into the row-ordered columns)."""
    stats = {}
    for name, rows in subsets.items():
        stats[name] = group_stats(user[rows], item[rows], label[rows])
        per_user = np.bincount(user[rows])
        per_user = per_user[per_user > 0]
        both = [
            len(np.unique(label[rows][user[rows] == who])) == 2 for who in np.unique(user[rows])
        ]
        stats[name]["rows_per_user_median"] = float(np.median(per_user)) if len(per_user) else 0.0
        stats[name]["users_with_both_labels"] = int(sum(both))
    return stats
