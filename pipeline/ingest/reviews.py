"""Readers for review datasets in JSON lines, plain or .gz: Amazon reviews 2014 / 2018 (reviews +
item metadata) and the Yelp academic dataset (review + business files)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

from pipeline.ingest.json_lines import iter_objects, require_fields
from pipeline.ingest.lines import LineIssues
from pipeline.ingest.records import ItemMeta, RawInteraction, cut_words, parse_datetime, parse_number

AMAZON_REVIEW_FIELDS = ("reviewerID", "asin", "overall", "unixReviewTime")
YELP_REVIEW_FIELDS = ("user_id", "business_id", "stars", "date")


def read_amazon_interactions(path: Path, issues: LineIssues, with_review: bool) -> Iterator[RawInteraction]:
    yield from _read_reviews(path, issues, AMAZON_REVIEW_FIELDS, "reviewText", with_review, parse_number)


def read_amazon_items(path: Path, issues: LineIssues, max_words: int) -> Iterator[ItemMeta]:
    """2018 metadata is JSON (`category`: list, `description`: list of str); 2014 metadata lines
    are Python dict literals (`categories`: list of category paths, `description`: str)."""
    for number, where, record in iter_objects(path, issues, python_literals=True):
        if not require_fields(record, ("asin",), where, issues):
            continue
        yield ItemMeta(
            line=number,
            item=str(record["asin"]),
            title=cut_words(record.get("title"), max_words),
            categories=_amazon_categories(record),
            description=cut_words(_joined(record.get("description")), max_words),
            extra=cut_words(record.get("brand"), max_words),
        )


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
        rating = parse_number(record[rating_field], rating_field, where, issues)
        stamp = parse_time(record[time_field], time_field, where, issues)
        if rating is None or stamp is None:
            continue
        review = str(record.get(text_field) or "") if with_review else None
        yield RawInteraction(number, str(record[user_field]), str(record[item_field]), rating, stamp, review)


def read_yelp_items(path: Path, issues: LineIssues, max_words: int) -> Iterator[ItemMeta]:
    """business.json: `categories` is one string "A, B" (or null); the address becomes `extra`."""
    for number, where, record in iter_objects(path, issues):
        if not require_fields(record, ("business_id",), where, issues):
            continue
        categories = [part.strip() for part in str(record.get("categories") or "").split(",")]
        address = ", ".join(str(record[key]) for key in ("address", "city", "state") if record.get(key))
        yield ItemMeta(
            line=number,
            item=str(record["business_id"]),
            title=cut_words(record.get("name"), max_words),
            categories=[part for part in categories if part],
            description="",
            extra=cut_words(address, max_words),
        )
