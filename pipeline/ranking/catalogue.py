"""Who the full-catalogue evaluation ranks for, and against which items.

Every test user is ranked once, from the state before their first test row: that row's history
(what a prompt shows) and, for a sequential CF model, its per-row user state. The user's
candidates are every catalogue item they had not interacted with before that row; the targets are
their liked test items (task "topn") and the item of their first test row, liked or not (task
"next", next-item prediction). Every model is measured on the same users and targets, so the
differences between models pair.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.ranking.params import RankingParams

TASKS = ("topn", "next")


@dataclass(frozen=True)
class RankingUsers:
    users: np.ndarray  # (U,) user ids, ascending: every user with a test row
    first_rows: np.ndarray  # (U,) each user's first test row (its history is the prompt's; its state the CF state)
    seen: list[np.ndarray]  # per user: items interacted with before the first test row, ascending
    targets: pd.DataFrame  # task, user, item: the held-out targets of both tasks
    n_items: int  # catalogue size

    def candidates(self, index: int) -> np.ndarray:
        """Candidate items of the user at `index`: the catalogue minus what they had seen."""
        keep = np.ones(self.n_items, dtype=bool)
        keep[self.seen[index]] = False
        return np.flatnonzero(keep)

    def task_users(self, task: str) -> np.ndarray:
        """Users with at least one target of `task`, ascending (the users its metrics average over)."""
        return np.unique(self.targets.loc[self.targets["task"] == task, "user"].to_numpy())


def ranking_users(interactions: pd.DataFrame, n_items: int, max_users: int | None = None,
                  seed: int = 0) -> RankingUsers:
    """The evaluated users of INTERACTIONS rows: every user with a test row (at most `max_users`,
    a seeded sample), their first test row, what they had seen before it, and the targets."""
    test = interactions.loc[interactions["split"] == "test"].sort_values("row")
    users = np.unique(test["user"].to_numpy())
    if max_users is not None and users.size > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, size=max_users, replace=False))
    test = test[test["user"].isin(users)]
    first = test.groupby("user", sort=True)["row"].min()
    first_rows = first.reindex(users).to_numpy(dtype=np.int64)
    before = interactions[interactions["user"].isin(users)]
    before = before[before["row"] < before["user"].map(first)]
    seen_by_user = before.groupby("user")["item"].agg(lambda items: np.unique(items.to_numpy()))
    seen = [seen_by_user.get(user, np.zeros(0, dtype=np.int64)).astype(np.int64) for user in users]
    liked = test.loc[test["label"] == 1, ["user", "item"]].drop_duplicates()
    first_items = test.loc[test["row"].isin(first_rows), ["user", "item"]]
    targets = pd.concat([liked.assign(task="topn"), first_items.assign(task="next")], ignore_index=True)
    # a target the user had seen before (a re-rated item) cannot be recommended: not a target
    seen_pairs = {(int(u), int(i)) for u, items in zip(users, seen) for i in items}
    keep = [(int(u), int(i)) not in seen_pairs for u, i in zip(targets["user"], targets["item"])]
    targets = targets.loc[keep, ["task", "user", "item"]].sort_values(["task", "user", "item"], ignore_index=True)
    return RankingUsers(users=users, first_rows=first_rows, seen=seen,
                        targets=targets.astype({"user": np.int32, "item": np.int32}), n_items=int(n_items))


def evaluated_users(interactions: pd.DataFrame, n_items: int, params: RankingParams) -> RankingUsers:
    """The users every model is ranked for under params.yaml's `ranking` (the same users and
    targets for every model, so that differences pair)."""
    return ranking_users(interactions, n_items, params.max_users, params.seed)
