"""Ranks of held-out targets, from scores of the whole catalogue or from a ranked list.

A model that scores every item (a CF model, popularity, a student with an item head) ranks each
user's candidates by score, and a target's rank counts every other candidate scored at least as
high (ties pessimistic: a constant model ranks every target last). A re-ranker's list is an order
(pipeline/ranking/order.py), and a target's rank is its position in it, -1 when it is not in it.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from pipeline.ranking.catalogue import TASKS, RankingUsers

# users scored per block: (block, n_items) float64 scores at most 64 MiB
MAX_BLOCK_CELLS = 1 << 23


def target_ranks(scores: np.ndarray, candidates: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of each of `targets` (item ids, each a candidate) among `candidates` (item ids)
    under `scores` (n_items,): the candidates other than the target scored >= it."""
    scores = np.asarray(scores, dtype=np.float64)
    candidate_scores = np.sort(scores[candidates])
    target_scores = scores[np.asarray(targets, dtype=np.int64)]
    at_least = candidate_scores.size - np.searchsorted(candidate_scores, target_scores, side="left")
    return (at_least - 1).astype(np.int64)  # the target itself is among them


def catalogue_ranks(users: RankingUsers, score_users: Callable[[np.ndarray], np.ndarray],
                    tasks: tuple[str, ...]) -> pd.DataFrame:
    """RANKS rows of every target of `tasks` under a model that scores the whole catalogue:
    `score_users(indices)` gives (len(indices), n_items) scores of the users at those positions of
    `users.users`, called block by block."""
    targets = users.targets[users.targets["task"].isin(tasks)]
    by_user = {user: frame for user, frame in targets.groupby("user", sort=True)}
    block = max(1, MAX_BLOCK_CELLS // max(users.n_items, 1))
    parts = []
    for start in range(0, users.users.size, block):
        indices = np.arange(start, min(start + block, users.users.size))
        scores = np.asarray(score_users(indices), dtype=np.float64)
        if scores.shape != (indices.size, users.n_items):
            raise ValueError(f"scores of {indices.size} users have shape {scores.shape}, "
                             f"expected ({indices.size}, {users.n_items})")
        for row, index in enumerate(indices):
            frame = by_user.get(int(users.users[index]))
            if frame is None:
                continue
            candidates = users.candidates(index)
            parts.append(frame.assign(
                rank=target_ranks(scores[row], candidates, frame["item"].to_numpy()),
                candidates=np.int32(candidates.size)))
    return ranks_frame(parts)


def list_ranks(users: RankingUsers, lists: dict[int, np.ndarray], tasks: tuple[str, ...]) -> pd.DataFrame:
    """RANKS rows of every target of `tasks` under a re-ranker: `lists` maps a user id to its
    ranked item ids, best first; a target not in its user's list gets rank -1."""
    targets = users.targets[users.targets["task"].isin(tasks)]
    parts = []
    for user, frame in targets.groupby("user", sort=True):
        ranked = np.asarray(lists.get(int(user), np.zeros(0, dtype=np.int64)), dtype=np.int64)
        position = {int(item): index for index, item in enumerate(ranked)}
        parts.append(frame.assign(rank=[position.get(int(item), -1) for item in frame["item"]],
                                  candidates=np.int32(ranked.size)))
    return ranks_frame(parts)


def ranks_frame(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """RANKS columns in order, sorted by task, user, item (the same bytes for the same ranks)."""
    columns = ["task", "user", "item", "rank", "candidates"]
    if not parts:
        return pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in
                             zip(columns, ["object", "int32", "int32", "int64", "int32"])})
    frame = pd.concat(parts, ignore_index=True)[columns]
    frame = frame.astype({"user": np.int32, "item": np.int32, "rank": np.int64, "candidates": np.int32})
    return frame.sort_values(["task", "user", "item"], ignore_index=True)


def vector_ranks(states: np.ndarray, items: np.ndarray, users: RankingUsers,
                 tasks: tuple[str, ...] = TASKS) -> pd.DataFrame:
    """RANKS of a CF model: <state, item> over the whole catalogue, `states` (U, d) the evaluated
    users' states before their first test row (users.users order), `items` (n_items, d)."""
    states = np.asarray(states, dtype=np.float64)
    items = np.asarray(items, dtype=np.float64)
    return catalogue_ranks(users, lambda indices: states[indices] @ items.T, tasks)


def constant_ranks(item_scores: np.ndarray, users: RankingUsers, tasks: tuple[str, ...] = TASKS) -> pd.DataFrame:
    """RANKS of a model that scores every user's items alike (popularity: train counts)."""
    scores = np.asarray(item_scores, dtype=np.float64)[None, :]
    return catalogue_ranks(users, lambda indices: np.repeat(scores, indices.size, axis=0), tasks)
