"""Fixed-seed evaluation samples: user-level subsets of a split, and sampled top-N candidates.

Subsets sample USERS (keeping their rows, optionally capped per user) so per-user metrics such as
UAUC and NDCG have several rows per user to rank.
"""
from __future__ import annotations

import numpy as np

from pipeline.ingest.config import SubsetParams


def sample_user_subset(
    rows: np.ndarray, user: np.ndarray, params: SubsetParams, rng: np.random.Generator
) -> np.ndarray:
    """Sorted row ids: a `user_fraction` of the users among `rows` (at least one), each with at
    most `max_rows_per_user` of their rows (sampled), users added in random order until the next
    would pass `max_rows`."""
    grouped = rows[np.argsort(user[rows], kind="stable")]  # rows grouped by user
    grouped_user = user[grouped]
    users = np.unique(grouped_user)
    count = max(1, int(round(params.user_fraction * len(users))))
    chosen = rng.permutation(users)[:count]
    picked: list[np.ndarray] = []
    total = 0
    for who in chosen:
        mine = grouped[np.searchsorted(grouped_user, who) : np.searchsorted(grouped_user, who, "right")]
        if params.max_rows_per_user is not None and len(mine) > params.max_rows_per_user:
            mine = rng.choice(mine, params.max_rows_per_user, replace=False)
        if params.max_rows is not None and total + len(mine) > params.max_rows:
            if total:
                break
            mine = rng.choice(mine, params.max_rows, replace=False)
        picked.append(mine)
        total += len(mine)
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


def sample_rows(rows: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted `count` rows of `rows` (all of them when there are fewer)."""
    if len(rows) <= count:
        return np.sort(rows)
    return np.sort(rng.choice(rows, count, replace=False))


def sample_topn_candidates(
    user: np.ndarray, item: np.ndarray, label: np.ndarray, is_test: np.ndarray,
    n_items: int, negatives: int, rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(user, item, positive) columns: per test user with a liked test row, the first liked test
    item plus `negatives` items the user never interacted with (any split), sampled without
    replacement by rejection. Also returns how many users got fewer negatives (too few items)."""
    seen_by_user: dict[int, set[int]] = {}
    for who, what in zip(user.tolist(), item.tolist()):
        seen_by_user.setdefault(who, set()).add(what)
    liked_test = np.flatnonzero(is_test & (label == 1))  # rows are in time order
    _, first = np.unique(user[liked_test], return_index=True)
    out_user, out_item, out_positive = [], [], []
    short = 0
    for row in liked_test[first]:
        who, seen = int(user[row]), seen_by_user[int(user[row])]
        wanted = min(negatives, n_items - len(seen))
        short += wanted < negatives
        drawn = _draw_unseen(seen, wanted, n_items, rng)
        out_user += [who] * (1 + len(drawn))
        out_item += [int(item[row]), *drawn]
        out_positive += [1] + [0] * len(drawn)
    return (np.asarray(out_user, np.int32), np.asarray(out_item, np.int32),
            np.asarray(out_positive, np.int8), short)


def _draw_unseen(seen: set[int], wanted: int, n_items: int, rng: np.random.Generator) -> list[int]:
    if wanted <= 0:
        return []
    if n_items - len(seen) <= 4 * wanted:  # few unseen items: pick among them directly
        unseen = np.setdiff1d(np.arange(n_items), np.fromiter(seen, np.int64))
        return sorted(rng.choice(unseen, wanted, replace=False).tolist())
    drawn: set[int] = set()
    while len(drawn) < wanted:
        for candidate in rng.integers(0, n_items, 2 * wanted).tolist():
            if candidate not in seen and candidate not in drawn and len(drawn) < wanted:
                drawn.add(candidate)
    return sorted(drawn)
