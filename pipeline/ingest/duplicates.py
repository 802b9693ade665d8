"""Interactions that repeat a (user, item) pair: kept, dropped (the pair's earliest row stays) or
an error naming the repeated line, per `ingest.duplicates`; counted for the card either way."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.ingest.columns import Columns
from pipeline.ingest.lines import IngestError, quoted


def repeated_rows(columns: Columns) -> tuple[np.ndarray, np.ndarray]:
    """(repeat, first_line): `repeat[r]` is True when an earlier row (by time, then file line) has
    row r's (user, item) pair; `first_line[r]` is the file line of the pair's earliest row."""
    order = np.lexsort((columns.line, columns.timestamp, columns.item, columns.user))  # by pair, earliest first
    user, item = columns.user[order], columns.item[order]
    same = np.r_[False, (user[1:] == user[:-1]) & (item[1:] == item[:-1])]
    starts = np.flatnonzero(~same)
    repeat = np.empty(len(columns), dtype=bool)
    repeat[order] = same
    first_line = np.empty(len(columns), dtype=np.int64)
    first_line[order] = np.repeat(columns.line[order][starts], np.diff(np.r_[starts, len(columns)]))
    return repeat, first_line


def apply_duplicate_policy(columns: Columns, policy: str, path: Path) -> tuple[Columns, dict]:
    """`columns` after the policy (keep | drop | error) and the card's `duplicates` section."""
    repeat, first_line = repeated_rows(columns)
    rows = np.flatnonzero(repeat)
    rows = rows[np.argsort(columns.line[rows], kind="stable")]  # in file order
    examples = [
        f"{path}:{columns.line[r]}: user {quoted(columns.user_ids[columns.user[r]])} and item "
        f"{quoted(columns.item_ids[columns.item[r]])} already on line {first_line[r]}"
        for r in rows[:5]
    ]
    if len(rows) and policy == "error":
        raise IngestError(
            f"{examples[0]} ({len(rows)} repeated rows; set ingest.duplicates: drop to keep each pair's "
            "earliest row, or keep to keep them all)"
        )
    card = {
        "policy": policy,
        "repeated_rows": len(rows),
        "pairs_repeated": len(np.unique(first_line[rows])),
        "rows_dropped": len(rows) if policy == "drop" else 0,
        "examples": examples,
    }
    return (columns.take(~repeat) if policy == "drop" else columns), card
