"""Global time order and the train/valid/test splits: calendar-month windows, the papers'
'first months train, the rest halved by time' mode, and leave-one-out per user."""
from __future__ import annotations

import numpy as np

from pipeline.schemas import SPLITS

UNASSIGNED = -1  # rows after the last window: dropped


def time_order(timestamp: np.ndarray, user_rank: np.ndarray, item_rank: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Indices that sort rows by time; ties by raw user id, raw item id, then file line."""
    return np.lexsort((line, item_rank, user_rank, timestamp))


def raw_id_rank(raw_ids: list[str]) -> np.ndarray:
    """(len(raw_ids),) int64: each id's position in sorted string order."""
    rank = np.empty(len(raw_ids), dtype=np.int64)
    rank[np.argsort(np.asarray(raw_ids, dtype=object), kind="stable")] = np.arange(len(raw_ids))
    return rank


def month_index(timestamp: np.ndarray) -> np.ndarray:
    """Calendar month (UTC) of each timestamp, counted from January 1970."""
    return timestamp.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)


def month_start(month: int) -> str:
    return str(np.datetime64(int(month), "M").astype("datetime64[D]"))


def split_by_months(timestamp: np.ndarray, train: int, valid: int, test: int) -> tuple[np.ndarray, dict]:
    """Split codes (0/1/2, UNASSIGNED after the test window) for time-sorted rows, and the windows.

    Windows are consecutive calendar months from the first row's month: `train` months, then
    `valid`, then `test`.
    """
    months = month_index(timestamp)
    first = int(months.min())
    edges = np.array([first + train, first + train + valid, first + train + valid + test])
    codes = np.searchsorted(edges, months, side="right").astype(np.int8)
    codes[codes == 3] = UNASSIGNED
    starts = [first, *edges.tolist()]
    windows = {
        name: {"start": month_start(starts[i]), "end": month_start(starts[i + 1])}
        for i, name in enumerate(SPLITS)
    }
    return codes, windows


def split_last_months_halved(timestamp: np.ndarray, train: int) -> tuple[np.ndarray, dict]:
    """The papers' Book/Yelp split: `train` months from the first, then every later row
    (already in time order) halved by count: first half valid, second half test."""
    months = month_index(timestamp)
    edge = int(months.min()) + train
    codes = np.zeros(len(timestamp), dtype=np.int8)
    later = np.flatnonzero(months >= edge)
    codes[later[: len(later) // 2]] = 1
    codes[later[len(later) // 2 :]] = 2
    windows = {"train": {"start": month_start(int(months.min())), "end": month_start(edge)}}
    for code, name in ((1, "valid"), (2, "test")):
        picked = timestamp[codes == code]
        if len(picked):
            windows[name] = {"first": _day(picked.min()), "last": _day(picked.max())}
    return codes, windows


def split_leave_one_out(user: np.ndarray) -> np.ndarray:
    """Per user (rows in time order): last row test, second last valid, the rest train.
    Users with fewer than 3 rows stay wholly in train."""
    n = len(user)
    by_user = np.lexsort((np.arange(n), user))
    sorted_user = user[by_user]
    # position from the end within each user's run: 0 = last
    run_end = np.r_[np.flatnonzero(sorted_user[1:] != sorted_user[:-1]), n - 1] if n else np.array([], int)
    counts = np.bincount(user, minlength=int(user.max(initial=-1)) + 1)
    end_of_run = np.repeat(run_end, counts[sorted_user[run_end]])
    from_end = end_of_run - np.arange(n)
    codes = np.zeros(n, dtype=np.int8)
    enough = counts[sorted_user] >= 3
    codes[by_user[(from_end == 0) & enough]] = 2
    codes[by_user[(from_end == 1) & enough]] = 1
    return codes


def _day(stamp: np.int64) -> str:
    return str(np.datetime64(int(stamp), "s").astype("datetime64[D]"))
