"""Fixed-seed evaluation samples: subsets of a split, and sampled top-N candidates.

Subsets sample USERS by default (keeping their rows, optionally capped per user) so per-user
metrics such as UAUC and NDCG have several rows per user to rank; with `row_fraction` they sample
ROWS uniformly instead, as ThinkRec's and CoLLM's data notebooks do (`DataFrame.sample(frac=...)`).
"""
from __future__ import annotations

import numpy as np

from pipeline.ingest.config import SubsetParams


def sample_subset(
    rows: np.ndarray, user: np.ndarray, params: SubsetParams, rng: np.random.Generator
) -> np.ndarray:
    """Sorted row ids of one evaluation subset of `rows` (a split): `row_fraction` of the rows
    (round(fraction x rows), pandas' count, at least one) sampled uniformly without replacement;
    or, with `row_fraction` null, users (sample_user_subset)."""
    if params.row_fraction is None:
        return sample_user_subset(rows, user, params, rng)
    return sample_rows(rows, max(1, round(params.row_fraction * len(rows))), rng)


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
    n_items: int, negatives: int, rng: np.random.Generator, max_users: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """(user, item, positive, row) columns: per test user with a liked test row, the first liked
    test item plus `negatives` items the user never interacted with (any split), sampled without
    replacement by rejection; `row` is the positive's interaction row (its history is the one a
    prompt shows for every candidate of the user). `max_users` caps the users (a seeded sample).
    Also returns how many users got fewer negatives (too few items)."""
    pairs = np.unique(user.astype(np.int64) * n_items + item)  # sorted (user, item) seen pairs
    pair_user = pairs // n_items
    liked_test = np.flatnonzero(is_test & (label == 1))  # rows are in time order
    _, first = np.unique(user[liked_test], return_index=True)
    positives = liked_test[first]
    if max_users is not None and len(positives) > max_users:
        positives = np.sort(rng.choice(positives, max_users, replace=False))
    out_user, out_item, out_positive, out_row = [], [], [], []
    short = 0
    for row in positives:
        who = int(user[row])
        seen = pairs[np.searchsorted(pair_user, who) : np.searchsorted(pair_user, who, "right")] - who * n_items
        wanted = min(negatives, n_items - len(seen))
        short += wanted < negatives
        drawn = _draw_unseen(seen, wanted, n_items, rng)
        out_user.append(np.full(1 + len(drawn), who, np.int32))
        out_item.append(np.r_[item[row], drawn].astype(np.int32))
        out_positive.append(np.r_[1, np.zeros(len(drawn))].astype(np.int8))
        out_row.append(np.full(1 + len(drawn), row, np.int64))
    if not out_user:
        return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int8), np.zeros(0, np.int64), short
    return (np.concatenate(out_user), np.concatenate(out_item), np.concatenate(out_positive),
            np.concatenate(out_row), short)


def _draw_unseen(seen: np.ndarray, wanted: int, n_items: int, rng: np.random.Generator) -> np.ndarray:
    """`wanted` distinct items not in `seen` (sorted unique), sorted."""
    if wanted <= 0:
        return np.zeros(0, np.int64)
    if n_items - len(seen) <= 4 * wanted:  # few unseen items: pick among them directly
        unseen = np.setdiff1d(np.arange(n_items), seen, assume_unique=True)
        return np.sort(rng.choice(unseen, wanted, replace=False))
    drawn = np.zeros(0, np.int64)
    while len(drawn) < wanted:
        candidates = rng.integers(0, n_items, 2 * wanted)
        drawn = np.r_[drawn, candidates[~np.isin(candidates, seen)]]
        _, first = np.unique(drawn, return_index=True)
        drawn = drawn[np.sort(first)]  # distinct, in draw order
    return np.sort(drawn[:wanted])
