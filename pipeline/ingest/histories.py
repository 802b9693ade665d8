"""Per-row history: the user's earlier interactions (any split), oldest first, last N."""
from __future__ import annotations

import numpy as np
import pyarrow as pa


def build_histories(
    user: np.ndarray, item: np.ndarray, label: np.ndarray, length: int
) -> tuple[pa.ListArray, pa.ListArray]:
    """For rows in global time order, (history_items, history_labels) list arrays.

    Row r's history = the items (and labels) of the same user's rows before r, the last `length`
    of them, oldest first. Vectorised: rows grouped by user keep their time order (stable sort),
    so each history is a slice just before the row's position in that grouping.
    """
    n = len(user)
    by_user = np.argsort(user, kind="stable")  # (n,) rows grouped by user, time order within
    position = np.empty(n, dtype=np.int64)
    position[by_user] = np.arange(n)  # row -> its place in the grouping
    sorted_user = user[by_user]
    run_start = np.r_[0, np.flatnonzero(sorted_user[1:] != sorted_user[:-1]) + 1] if n else np.zeros(0, np.int64)
    starts = np.repeat(run_start, np.diff(np.r_[run_start, n]))  # (n,) grouping start of each row's user
    earlier = position - starts[position]  # rows of the same user before this one
    sizes = np.minimum(earlier, length)
    offsets = np.r_[0, np.cumsum(sizes)].astype(np.int32)
    first = np.repeat(position - sizes, sizes)
    within = np.arange(int(offsets[-1])) - np.repeat(offsets[:-1], sizes)
    flat = by_user[first + within]  # (total,) row ids of the history entries
    items = pa.ListArray.from_arrays(pa.array(offsets), pa.array(item[flat].astype(np.int32)))
    labels = pa.ListArray.from_arrays(pa.array(offsets), pa.array(label[flat].astype(np.int8)))
    return items, labels
