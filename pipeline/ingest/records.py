"""The two record shapes every reader yields, and small field parsers they share."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import NamedTuple

from pipeline.ingest.lines import LineIssues


class RawInteraction(NamedTuple):
    line: int  # 1-based line number in the interactions file (used to fetch reviews later)
    user: str  # the dataset's own user id
    item: str  # the dataset's own item id
    rating: float  # as written; checked by pipeline.ingest.validation
    timestamp: float  # as written (s, ms or us since the epoch), or epoch seconds of a date; checked likewise
    review: str | None  # only filled when the reader is asked for review text


class ItemMeta(NamedTuple):
    line: int  # 1-based line number in the metadata file
    item: str  # the dataset's own item id
    title: str
    categories: list[str]  # most general first
    description: str
    extra: str  # brand, address, release year...; "" when absent


def cut_words(text: str | None, max_words: int) -> str:
    """Collapse whitespace and keep the first `max_words` words (bounded memory per item)."""
    if not text:
        return ""
    return " ".join(str(text).split()[:max_words])


def parse_number(value: object, field: str, where: str, issues: LineIssues) -> float | None:
    """`value` as a float, or report `where` naming `field` and return None."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):  # OverflowError: a JSON integer beyond float range
        issues.report(where, f"bad_number: field '{field}' is {value!r}, expected a number")
        return None
    if number != number:  # NaN
        issues.report(where, f"bad_number: field '{field}' is NaN")
        return None
    return number


def parse_datetime(value: object, field: str, where: str, issues: LineIssues) -> int | None:
    """'YYYY-MM-DD[ HH:MM:SS]' (UTC, as Yelp writes dates) -> epoch seconds, or report and None."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        issues.report(where, f"bad_date: field '{field}' is {value!r}, expected YYYY-MM-DD HH:MM:SS")
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp())


def split_fields(line: str, sep: str, expected: int, where: str, issues: LineIssues) -> list[str] | None:
    """Split a delimited line into exactly `expected` fields with non-empty ids, or report it."""
    fields = line.split(sep)
    if len(fields) != expected:
        issues.report(where, f"bad_field_count: {len(fields)} fields, expected {expected} separated by {sep!r}")
        return None
    return fields


def require_ids(user: str, item: str, where: str, issues: LineIssues) -> bool:
    if not user.strip() or not item.strip():
        issues.report(where, "missing_id: empty user or item id")
        return False
    return True
