"""Per-row history: the user's earlier interactions (any split), oldest first, last N."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

_CHUNK_ROWS = 8_192  # rows per chunk: temporaries ~ 8192 * length * 8 bytes


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
    offsets = np.r_[0, np.cumsum(sizes)]
    # entry j of row r sits at grouping place (position[r] - sizes[r]) + (j - offsets[r]);
    # filled in chunks of rows because total = n * length int64 temporaries would be large
    shift = offsets[:-1] - (position - sizes)
    hist_items = np.empty(int(offsets[-1]), dtype=np.int32)
    hist_labels = np.empty(int(offsets[-1]), dtype=np.int8)
    for lo in range(0, n, _CHUNK_ROWS):
        hi = min(n, lo + _CHUNK_ROWS)
        begin, end = int(offsets[lo]), int(offsets[hi])
        flat = by_user[np.arange(begin, end) - np.repeat(shift[lo:hi], sizes[lo:hi])]  # history rows
        hist_items[begin:end] = item[flat]
        hist_labels[begin:end] = label[flat]
    offsets = pa.array(offsets.astype(np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(hist_items)), pa.ListArray.from_arrays(offsets, pa.array(hist_labels))
