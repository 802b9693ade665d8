"""Streaming raw interactions into compact columns: string ids become int codes as lines arrive,
so memory grows with the number of kept rows (~24 bytes each) and distinct ids, never with the
raw file's size. Review text is not kept here (see `collect_reviews`)."""
from __future__ import annotations

from array import array
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from pipeline.ingest.formats import InteractionReader
from pipeline.ingest.lines import LineIssues
from pipeline.ingest.validation import LineChecks


@dataclass(frozen=True)
class Columns:
    """Interactions as parallel arrays; `user`/`item` index into `user_ids`/`item_ids`."""

    user: np.ndarray  # (n,) int32
    item: np.ndarray  # (n,) int32
    rating: np.ndarray  # (n,) float32
    timestamp: np.ndarray  # (n,) int64, epoch seconds UTC
    line: np.ndarray  # (n,) int64, line in the interactions file
    user_ids: list[str]
    item_ids: list[str]  # every item seen in the file, also on rows outside the time range

    def __len__(self) -> int:
        return len(self.user)

    def take(self, index: np.ndarray) -> "Columns":
        """Rows selected by a boolean mask or an index array (vocabularies unchanged)."""
        return replace(
            self, user=self.user[index], item=self.item[index], rating=self.rating[index],
            timestamp=self.timestamp[index], line=self.line[index],
        )


def collect_interactions(
    read: InteractionReader, path: Path, issues: LineIssues, checks: LineChecks, start: int | None, end: int | None
) -> tuple[Columns, int]:
    """Stream `path` once; lines whose timestamp or rating fails `checks` (made for `path` and
    `issues`) are bad lines; keep rows with start <= timestamp < end. Returns (columns, rows outside)."""
    users: dict[str, int] = {}
    items: dict[str, int] = {}
    user, item = array("i"), array("i")
    rating, stamp, line = array("f"), array("q"), array("q")
    outside = 0
    for record in read(path, issues, False):
        seconds = checks.timestamp(record.timestamp, record.line)
        score = checks.rating(record.rating, record.line) if seconds is not None else None  # one reason per line
        if score is None:
            continue
        code = items.setdefault(record.item, len(items))
        if (start is not None and seconds < start) or (end is not None and seconds >= end):
            outside += 1
            continue
        user.append(users.setdefault(record.user, len(users)))
        item.append(code)
        rating.append(score)
        stamp.append(seconds)
        line.append(record.line)
    columns = Columns(
        np.frombuffer(user, dtype=np.int32), np.frombuffer(item, dtype=np.int32),
        np.frombuffer(rating, dtype=np.float32), np.frombuffer(stamp, dtype=np.int64),
        np.frombuffer(line, dtype=np.int64), list(users), list(items),
    )
    return columns, outside


def collect_reviews(read: InteractionReader, path: Path, lines: np.ndarray) -> dict[int, str]:
    """Second pass over the interactions file: review text of the kept rows' `lines` only."""
    wanted = set(lines.tolist())
    found: dict[int, str] = {}
    for record in read(path, LineIssues("skip"), True):
        if record.line in wanted:
            found[record.line] = record.review or ""
    return found
