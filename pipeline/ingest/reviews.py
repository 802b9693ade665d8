"""Readers for review datasets in JSON lines, plain or .gz: Amazon reviews 2014 / 2018 (reviews +
item metadata) and the Yelp academic dataset (review + business files)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

from pipeline.ingest.json_lines import iter_objects, require_fields
from pipeline.ingest.lines import LineIssues
from pipeline.ingest.records import (
    ItemMeta, RawInteraction, TextLimit, checked_id, checked_ids, cut_text, parse_datetime, parse_number,
)

AMAZON_REVIEW_FIELDS = ("reviewerID", "asin", "overall", "unixReviewTime")
YELP_REVIEW_FIELDS = ("user_id", "business_id", "stars", "date")


def read_amazon_interactions(path: Path, issues: LineIssues, with_review: bool) -> Iterator[RawInteraction]:
    yield from _read_reviews(path, issues, AMAZON_REVIEW_FIELDS, "reviewText", with_review, parse_number)


def read_amazon_items(path: Path, issues: LineIssues, limit: TextLimit) -> Iterator[ItemMeta]:
    """2018 metadata is JSON (`category`: list, `description`: list of str); 2014 metadata lines
    are Python dict literals (`categories`: list of category paths, `description`: str)."""
    for number, where, record in iter_objects(path, issues, python_literals=True):
        item = _item_id(record, "asin", where, issues)
        if item is None:
            continue
        yield ItemMeta(
            line=number,
            item=item,
            title=cut_text(record.get("title"), limit),
            categories=_amazon_categories(record),
            description=cut_text(_joined(record.get("description")), limit),
            extra=cut_text(record.get("brand"), limit),
        )


def _item_id(record: dict, field: str, where: str, issues: LineIssues) -> str | None:
    """The metadata line's item id, checked (missing_field, missing_id, bad_id), or None (reported)."""
    if not require_fields(record, (field,), where, issues):
        return None
    return checked_id(record[field], field, where, issues)


def _amazon_categories(record: dict) -> list[str]:
    if isinstance(record.get("category"), list):  # 2018: one path, most general first
        names = record["category"]
    elif isinstance(record.get("categories"), list):  # 2014: several paths; flatten in order
        names = [name for path in record["categories"] if isinstance(path, list) for name in path]
    else:
        names = []
    seen: dict[str, None] = {}
    for name in names:
        name = " ".join(str(name).split())
        if name and name not in seen:
            seen[name] = None
    return list(seen)


def _joined(value: object) -> str:
    if isinstance(value, list):
        return " ".join(str(part) for part in value)
    return "" if value is None else str(value)


def read_yelp_interactions(path: Path, issues: LineIssues, with_review: bool) -> Iterator[RawInteraction]:
    yield from _read_reviews(path, issues, YELP_REVIEW_FIELDS, "text", with_review, parse_datetime)


def _read_reviews(
    path: Path, issues: LineIssues, fields: tuple[str, str, str, str], text_field: str, with_review: bool,
    parse_time: Callable[[object, str, str, LineIssues], float | int | None],
) -> Iterator[RawInteraction]:
    """Review lines with `fields` = (user, item, rating, time) names; time parsed by `parse_time`."""
    user_field, item_field, rating_field, time_field = fields
    for number, where, record in iter_objects(path, issues):
        if not require_fields(record, fields, where, issues):
            continue
        ids = checked_ids(record[user_field], record[item_field], (user_field, item_field), where, issues)
        if ids is None:
            continue
        rating = parse_number(record[rating_field], rating_field, where, issues)
        stamp = parse_time(record[time_field], time_field, where, issues)
        if rating is None or stamp is None:
            continue
        review = str(record.get(text_field) or "") if with_review else None
        yield RawInteraction(number, *ids, rating, stamp, review)


def read_yelp_items(path: Path, issues: LineIssues, limit: TextLimit) -> Iterator[ItemMeta]:
    """business.json: `categories` is one string "A, B" (or null); the address becomes `extra`."""
    for number, where, record in iter_objects(path, issues):
        item = _item_id(record, "business_id", where, issues)
        if item is None:
            continue
        categories = [part.strip() for part in str(record.get("categories") or "").split(",")]
        address = ", ".join(str(record[key]) for key in ("address", "city", "state") if record.get(key))
        yield ItemMeta(
            line=number,
            item=item,
            title=cut_text(record.get("name"), limit),
            categories=[part for part in categories if part],
            description="",
            extra=cut_text(address, limit),
        )
