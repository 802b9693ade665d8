"""What a recommendation for a user starts from: the user's history as of the end of their data,
and the items they never interacted with, ranked by the CF model's score."""
from __future__ import annotations

import numpy as np
import pandas as pd


class UnknownUser(LookupError):
    """The raw user id is not in the dataset, or the user has no interactions (or no unseen items)."""


def user_id(users: pd.DataFrame, raw_id: str) -> int:
    """The contiguous id of the dataset's user `raw_id` (USERS frame)."""
    found = users.loc[users["raw_id"] == str(raw_id), "user"]
    if found.empty:
        examples = ", ".join(users["raw_id"].head(3).tolist())
        raise UnknownUser(f"user '{raw_id}' is not in the dataset ({len(users)} users, e.g. {examples})")
    return int(found.iloc[0])


def latest_history(interactions: pd.DataFrame, user: int, raw_id: str) -> tuple[list[int], list[int]]:
    """(items, labels) of the user's latest interactions, oldest first: the history of the user's
    last row (ingest.history_length long) plus that row itself, in any split: the state after all
    their data."""
    rows = interactions[interactions["user"] == user]
    if rows.empty:
        raise UnknownUser(f"user '{raw_id}' has no interactions: nothing to base a recommendation on")
    last = rows.loc[rows["row"].idxmax()]
    items = [int(i) for i in last["history_items"]] + [int(last["item"])]
    labels = [int(v) for v in last["history_labels"]] + [int(last["label"])]
    return items, labels


def unseen_items(interactions: pd.DataFrame, user: int, n_items: int) -> np.ndarray:
    """Ids of the catalogue's `n_items` items `user` never interacted with (in any split), ascending."""
    seen = np.zeros(n_items, dtype=bool)
    seen[interactions.loc[interactions["user"] == user, "item"].to_numpy()] = True
    return np.flatnonzero(~seen)


def count_unseen(interactions: pd.DataFrame, user: int, raw_id: str, n_items: int) -> int:
    """How many items `user` could be recommended (unseen_items); UnknownUser when none."""
    count = len(unseen_items(interactions, user, n_items))
    if count == 0:
        raise UnknownUser(f"user '{raw_id}' has rated all {n_items:,} items: nothing left to recommend")
    return count
