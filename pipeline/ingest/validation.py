"""Per-line checks of the timestamp and rating every reader yields.

A timestamp must be finite and fall inside a plausible range (`ingest.timestamps`), read in
seconds, milliseconds or microseconds (declared, or per line the one unit that lands inside the
range: the ranges of the three units cannot overlap, see TimestampParams). A rating must be finite
and on the dataset's scale. A value that fails is a bad line named `file:line` and field, which
`ingest.on_bad_line` turns into an error or a skipped, counted line.
"""
from __future__ import annotations

import math
from collections import Counter
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.ingest.formats import Format
from pipeline.ingest.lines import LineIssues

if TYPE_CHECKING:  # config imports epoch_seconds from here
    from pipeline.ingest.config import TimestampParams

UNIT_SECONDS = {"s": 1, "ms": 1_000, "us": 1_000_000}
UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds"}


def epoch_seconds(day: str | None, field: str) -> int | None:
    """ISO date 'YYYY-MM-DD' (UTC midnight) -> epoch seconds; None stays None."""
    if day is None:
        return None
    try:
        moment = datetime.combine(date.fromisoformat(day), datetime.min.time(), timezone.utc)
    except ValueError as err:
        raise ValueError(f"{field}: {day!r} is not an ISO date YYYY-MM-DD") from err
    return int(moment.timestamp())


class LineChecks:
    """Turns the raw timestamp and rating of a line of `path` into checked values, or reports the
    line to `issues` naming the format's own field (`unixReviewTime`, `stars`...). Counts lines per unit."""

    def __init__(self, path: Path, issues: LineIssues, timestamps: TimestampParams, scale: tuple[float, float],
                 fmt: Format) -> None:
        self.path = path
        self.issues = issues
        # a dated format's reader already gives epoch seconds
        self.units = ("s",) if fmt.dated else tuple(UNIT_SECONDS) if timestamps.unit == "auto" else (timestamps.unit,)
        self.earliest, self.latest = timestamps.earliest, timestamps.latest
        self.first = epoch_seconds(timestamps.earliest, "ingest.timestamps.earliest")
        self.last = epoch_seconds(timestamps.latest, "ingest.timestamps.latest")
        self.scale = scale
        self.time_field, self.rating_field = fmt.time_field, fmt.rating_field
        self.unit_counts: Counter[str] = Counter()

    def timestamp(self, value: float, line: int) -> int | None:
        """Epoch seconds (UTC) of `value`, or None after reporting a bad_timestamp."""
        if math.isfinite(value):
            for unit in self.units:
                seconds = math.floor(value / UNIT_SECONDS[unit])
                if self.first <= seconds < self.last:
                    self.unit_counts[unit] += 1
                    return seconds
        units = ", ".join(UNIT_NAMES[unit] for unit in self.units)
        self.issues.report(f"{self.path}:{line}", f"bad_timestamp: field '{self.time_field}' is {value!r}, not a time "
                                                  f"from {self.earliest} to {self.latest} in {units} (ingest.timestamps)")
        return None

    def rating(self, value: float, line: int) -> float | None:
        """`value` when finite and on the scale, else None after reporting a bad_rating."""
        low, high = self.scale
        if math.isfinite(value) and low <= value <= high:
            return value
        self.issues.report(f"{self.path}:{line}", f"bad_rating: field '{self.rating_field}' is {value!r}, not a rating "
                                                  f"from {low:g} to {high:g} (ingest.rating_scale)")
        return None
