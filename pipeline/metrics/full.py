"""Full-catalogue ranking metrics (pipeline/ranking), per user, from RANKS rows.

For each evaluated user, the targets' 0-based ranks in the model's list (-1: not in it):
  hr@K      1 when some target ranks < K
  recall@K  the share of the user's targets ranked < K
  ndcg@K    sum of 1/log2(rank + 2) over targets ranked < K, over the best possible such sum
            (min(targets, K) targets at the top)
and, for a re-ranker, `retrieved`: the share of the user's targets its retriever put in the list
(the retriever's recall at K). Names carry the task's prefix: `full_` for the liked test items,
`next_` for the next item.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.errors import BadInput
from pipeline.metrics.per_user import UserTable

PREFIXES = {"topn": "full", "next": "next"}


def full_table(ranks: pd.DataFrame, targets: pd.DataFrame, task: str, ks: list[int], where: str,
               reranker: bool = False) -> UserTable:
    """Per-user metrics of `task` from a model's RANKS rows, checked against the evaluation's
    `targets` (task, user, item): every target ranked exactly once, no other row. A `reranker`'s
    rows also give `<prefix>_retrieved`."""
    expected = targets.loc[targets["task"] == task, ["user", "item"]].sort_values(["user", "item"], ignore_index=True)
    got = ranks.loc[ranks["task"] == task].sort_values(["user", "item"], ignore_index=True)
    if len(got) != len(expected) or not (got[["user", "item"]].to_numpy() == expected.to_numpy()).all():
        missing = expected.merge(got[["user", "item"]], how="left", indicator=True).query("_merge == 'left_only'")
        detail = (f"user {int(missing['user'].iloc[0])}, item {int(missing['item'].iloc[0])} not ranked"
                  if len(missing) else "rows that are not this evaluation's targets")
        raise BadInput(f"{where}: task '{task}' has {len(got)} ranked targets, the evaluation {len(expected)} "
                       f"({detail}): rerun the stage that wrote it")
    users, user_index = np.unique(got["user"].to_numpy(), return_inverse=True)
    rank = got["rank"].to_numpy(np.int64)
    count = np.bincount(user_index, minlength=users.size).astype(np.float64)
    prefix = PREFIXES[task]
    values = {}
    listed = rank >= 0
    if reranker:
        values[f"{prefix}_retrieved"] = np.bincount(user_index, weights=listed, minlength=users.size) / count
    for k in ks:
        inside = listed & (rank < k)
        values[f"{prefix}_hr@{k}"] = (np.bincount(user_index, weights=inside, minlength=users.size) > 0).astype(np.float64)
        values[f"{prefix}_recall@{k}"] = np.bincount(user_index, weights=inside, minlength=users.size) / count
        gains = np.where(inside, 1.0 / np.log2(np.maximum(rank, 0) + 2.0), 0.0)
        ideal_discounts = np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))
        ideal = ideal_discounts[np.minimum(count, k).astype(np.int64) - 1]
        values[f"{prefix}_ndcg@{k}"] = np.bincount(user_index, weights=gains, minlength=users.size) / ideal
    return UserTable(users=users, rows=count.astype(np.int64), positives=count.astype(np.int64), values=values)
