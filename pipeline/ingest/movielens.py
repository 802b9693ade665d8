"""Readers for MovieLens on disk: RecBole atomic files (`.inter`/`.item`), the original ML-100k
(`u.data` tab-separated, `u.item` '|'-separated latin-1) and ML-1M (`::`-separated latin-1).

None of these has review text, so `with_review` is accepted and ignored.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from pipeline.ingest.lines import IngestError, LineIssues, iter_lines, quoted
from pipeline.ingest.records import (
    ItemMeta,
    RawInteraction,
    TextLimit,
    checked_id,
    checked_ids,
    cut_text,
    parse_number,
    split_fields,
)

# u.genre order: the 19 flags at the end of each u.item line.
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)
# RecBole item columns that carry the title / categories / short extra text, first match wins.
RECBOLE_TITLE = ("movie_title", "title", "name")
RECBOLE_CATEGORIES = ("class", "genre", "categories", "category")
RECBOLE_EXTRA = ("release_year", "year", "brand")
_YEAR = re.compile(r"\((\d{4})\)\s*$")


def _recbole_header(path: Path, issues: LineIssues) -> tuple[dict[str, int], Iterator[tuple[int, str]]]:
    """Column name -> index from the `name:type` header, and the remaining (line, text) stream."""
    lines = iter_lines(path, issues)
    number, header = next(lines, (0, ""))
    if number != 1:  # empty, or a skipped undecodable first line
        raise IngestError(f"{path}:1: expected a 'name:type' header line")
    names = [field.split(":")[0] for field in header.split("\t")]
    return {name: index for index, name in enumerate(names)}, lines


def _require_columns(columns: dict[str, int], wanted: tuple[str, ...], path: Path) -> None:
    missing = [name for name in wanted if name not in columns]
    if missing:
        raise IngestError(f"{path}:1: header lacks column(s) {missing}; has {quoted(sorted(columns))}")


def read_recbole_interactions(path: Path, issues: LineIssues, with_review: bool) -> Iterator[RawInteraction]:
    columns, lines = _recbole_header(path, issues)
    _require_columns(columns, ("user_id", "item_id", "rating", "timestamp"), path)
    for number, where, fields in _split_lines(lines, path, "\t", len(columns), issues):
        ids = checked_ids(fields[columns["user_id"]], fields[columns["item_id"]], ("user_id", "item_id"), where, issues)
        if ids is None:
            continue
        rating = parse_number(fields[columns["rating"]], "rating", where, issues)
        stamp = parse_number(fields[columns["timestamp"]], "timestamp", where, issues)
        if rating is None or stamp is None:
            continue
        yield RawInteraction(number, *ids, rating, stamp, None)


def _split_lines(
    lines: Iterator[tuple[int, str]], path: Path, sep: str, width: int, issues: LineIssues
) -> Iterator[tuple[int, str, list[str]]]:
    """(line number, 'file:line', fields) of the non-blank lines with exactly `width` fields."""
    for number, line in lines:
        if not line.strip():
            continue
        where = f"{path}:{number}"
        fields = split_fields(line, sep, width, where, issues)
        if fields is not None:
            yield number, where, fields


def read_recbole_items(path: Path, issues: LineIssues, limit: TextLimit) -> Iterator[ItemMeta]:
    columns, lines = _recbole_header(path, issues)
    _require_columns(columns, ("item_id",), path)
    title_at = next((columns[name] for name in RECBOLE_TITLE if name in columns), None)
    genre_at = next((columns[name] for name in RECBOLE_CATEGORIES if name in columns), None)
    extra_at = next((columns[name] for name in RECBOLE_EXTRA if name in columns), None)
    for number, where, fields in _split_lines(lines, path, "\t", len(columns), issues):
        item = checked_id(fields[columns["item_id"]], "item_id", where, issues)
        if item is None:
            continue
        yield ItemMeta(
            line=number,
            item=item,
            title=cut_text(_field(fields, title_at), limit),
            categories=_field(fields, genre_at).split(),  # RecBole token_seq: space-separated
            description="",
            extra=cut_text(_field(fields, extra_at), limit),
        )


def _field(fields: list[str], at: int | None) -> str:
    return fields[at] if at is not None else ""


def read_ml100k_interactions(path: Path, issues: LineIssues, with_review: bool) -> Iterator[RawInteraction]:
    yield from _read_delimited_ratings(path, "\t", "utf-8", ("user id", "item id"), issues)


def read_ml1m_interactions(path: Path, issues: LineIssues, with_review: bool) -> Iterator[RawInteraction]:
    yield from _read_delimited_ratings(path, "::", "latin-1", ("UserID", "MovieID"), issues)


def _read_delimited_ratings(
    path: Path, sep: str, encoding: str, id_fields: tuple[str, str], issues: LineIssues
) -> Iterator[RawInteraction]:
    """`user sep item sep rating sep timestamp` lines without a header (u.data, ratings.dat)."""
    for number, where, fields in _split_lines(iter_lines(path, issues, encoding), path, sep, 4, issues):
        user, item, rating_text, stamp_text = fields
        ids = checked_ids(user, item, id_fields, where, issues)
        if ids is None:
            continue
        rating = parse_number(rating_text, "rating", where, issues)
        stamp = parse_number(stamp_text, "timestamp", where, issues)
        if rating is None or stamp is None:
            continue
        yield RawInteraction(number, *ids, rating, stamp, None)


def read_ml100k_items(path: Path, issues: LineIssues, limit: TextLimit) -> Iterator[ItemMeta]:
    """u.item: id|title|release date|video release date|IMDb URL|19 genre flags (latin-1)."""
    width = 5 + len(ML100K_GENRES)
    for number, where, fields in _split_lines(iter_lines(path, issues, "latin-1"), path, "|", width, issues):
        flags = fields[5:]
        if any(flag not in ("0", "1") for flag in flags):
            issues.report(where, "bad_genre_flags: the 19 genre flags must be 0 or 1")
            continue
        item = checked_id(fields[0], "movie id", where, issues)
        if item is None:
            continue
        genres = [name for name, flag in zip(ML100K_GENRES, flags) if flag == "1"]
        yield ItemMeta(number, item, cut_text(fields[1], limit), genres, "", cut_text(fields[2], limit))


def read_ml1m_items(path: Path, issues: LineIssues, limit: TextLimit) -> Iterator[ItemMeta]:
    """movies.dat: MovieID::Title (Year)::Genre|Genre (latin-1)."""
    for number, where, fields in _split_lines(iter_lines(path, issues, "latin-1"), path, "::", 3, issues):
        item, title, genres = fields
        item = checked_id(item, "MovieID", where, issues)
        if item is None:
            continue
        year = _YEAR.search(title)
        yield ItemMeta(
            number, item, cut_text(title, limit), [g for g in genres.split("|") if g], "",
            year.group(1) if year else "",
        )
