"""The two record shapes every reader yields, and small field parsers they share."""
from __future__ import annotations

import unicodedata
from datetime import datetime, timezone
from typing import NamedTuple

from pipeline.ingest.lines import LineIssues, quoted


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


class TextLimit(NamedTuple):
    words: int  # ingest.max_text_words
    chars: int  # ingest.max_text_chars: a text without spaces (CJK) is one word of any length


def cut_text(text: object, limit: TextLimit) -> str:
    """Collapse whitespace, keep the first `limit.words` words, then at most `limit.chars` characters."""
    if not text:
        return ""
    return " ".join(str(text).split()[:limit.words])[:limit.chars].rstrip()


def parse_number(value: object, field: str, where: str, issues: LineIssues) -> float | None:
    """`value` as a float, or report `where` naming `field` and return None."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):  # OverflowError: a JSON integer beyond float range
        issues.report(where, f"bad_number: field '{field}' is {quoted(value)}, expected a number")
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
        issues.report(where, f"bad_date: field '{field}' is {quoted(value)}, expected YYYY-MM-DD HH:MM:SS")
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


# Unicode categories of characters that do not show: control, format (zero-width space, BOM,
# direction marks), surrogate, private use, unassigned, line and paragraph separators.
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def checked_id(value: object, field: str, where: str, issues: LineIssues) -> str | None:
    """`value` without surrounding spaces and tabs as a user or item id, or None after reporting
    one that is empty or null (missing_id), not a string or an integer (bad_id: a JSON list, object,
    bool or float would be str()'d into an id nobody wrote), or holds a character that does not
    show or another space than U+0020 (bad_id: "196" and "196\u200b" would be two users that print
    alike). Every reader calls it on every id field."""
    if value is None:
        issues.report(where, f"missing_id: field '{field}' is null")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        issues.report(where, f"bad_id: field '{field}' is {quoted(value)}, a {type(value).__name__}, "
                             "not a string or an integer")
        return None
    text = str(value).strip(" \t")
    if not text:
        issues.report(where, f"missing_id: field '{field}' is empty")
        return None
    for char in text:
        if unicodedata.category(char) in _INVISIBLE or (char.isspace() and char != " "):
            unnamed = "(a control character)" if unicodedata.category(char) == "Cc" else "(unnamed)"
            name = unicodedata.name(char, unnamed)
            issues.report(where, f"bad_id: field '{field}' is {quoted(text)}, which holds U+{ord(char):04X} {name}")
            return None
    return text


def checked_ids(user: object, item: object, fields: tuple[str, str], where: str,
                issues: LineIssues) -> tuple[str, str] | None:
    """(user, item) checked by `checked_id` under the dataset's `fields` names, or None (reported)."""
    user_id = checked_id(user, fields[0], where, issues)
    item_id = checked_id(item, fields[1], where, issues) if user_id is not None else None
    return None if item_id is None else (user_id, item_id)
