"""Small datasets in the review formats' own files, for the profile dry runs
(tests/test_profile_dry_run.py): Amazon 2018 (profiles/amazon-book.yaml), the Yelp academic dataset
(profiles/yelp.yaml) and Amazon 2014 5-core (profiles/rdrec-amazon2014.yaml).

Every user rates a window of consecutive items of a shuffled catalogue, the windows' starts spread
evenly, so every item gets exactly users * per_user / items ratings and no (user, item) pair
repeats: the counts clear each profile's filter (> 20 per user and item; 5-core) by construction.
Timestamps fall inside each profile's time_range, from its first month (the split's train months
count from the data's first month). Labels follow hidden user and item factors, so CF can learn."""
from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

TOPICS = ["history", "romance", "science", "mystery", "cooking", "travel", "poetry", "fantasy"]


def _epoch(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp())


def _ratings(users: int, items: int, per_user: int, start: str, end: str, seed: int) -> list[tuple[int, int, int, int]]:
    """(timestamp, user, item, rating 1-5) rows in time order, per the module's design."""
    if (users * per_user) % items or per_user > items:
        raise ValueError("users * per_user must be a multiple of items, per_user at most items")
    rng = np.random.default_rng(seed)
    taste, traits = rng.normal(size=(users, 3)), rng.normal(size=(items, 3))
    catalogue = rng.permutation(items)
    first, last = _epoch(start), _epoch(end)
    rows = []
    for user in range(users):
        offset = user * items // users
        for k in range(per_user):
            item = int(catalogue[(offset + k) % items])
            liked = taste[user] @ traits[item] + 0.3 * rng.normal() > 0
            rating = 5 if liked else int(rng.integers(1, 5))  # Book's label is rating == 5, Yelp's >= 4
            rows.append((int(rng.integers(first, last)), user, item, rating))
    rows[0] = (first + 3600, *rows[0][1:])  # the first month holds a row: the split counts from it
    rows.sort()
    return rows


def _write_gz_lines(path: Path, records: list, literal: bool = False) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("".join((repr(r) if literal else json.dumps(r)) + "\n" for r in records))


def write_amazon_book(directory: Path, users: int = 60, items: int = 80, per_user: int = 40, seed: int = 0) -> Path:
    """Amazon 2018 Books: Books.json.gz (reviews, JSON lines) and meta_Books.json.gz (JSON lines:
    `category` and `description` lists), reviews over 2017 (profiles/amazon-book.yaml's range)."""
    directory.mkdir(parents=True, exist_ok=True)
    reviews = [{"overall": float(r), "verified": True, "reviewTime": "", "reviewerID": f"A{u:04d}XZ",
                "asin": f"B{i:09d}", "reviewerName": f"Reader {u}", "unixReviewTime": t,
                "reviewText": f"Book {i} was {'wonderful' if r == 5 else 'fine'}, says reader {u}.",
                "summary": "A read"}
               for t, u, i, r in _ratings(users, items, per_user, "2017-01-01", "2018-01-01", seed)]
    _write_gz_lines(directory / "Books.json.gz", reviews)
    metas = [{"asin": f"B{i:09d}", "title": f"A book of {TOPICS[i % len(TOPICS)]}, volume {i}",
              "category": ["Books", TOPICS[i % len(TOPICS)].title()],
              "description": [f"Volume {i} of a series about {TOPICS[(i * 3 + 1) % len(TOPICS)]}."],
              "brand": f"Press {i % 5}"} for i in range(items)]
    _write_gz_lines(directory / "meta_Books.json.gz", metas)
    return directory


def write_yelp(directory: Path, users: int = 60, items: int = 80, per_user: int = 40, seed: int = 0) -> Path:
    """Yelp academic: yelp_academic_dataset_review.json and yelp_academic_dataset_business.json
    (plain JSON lines, `date` as YYYY-MM-DD HH:MM:SS), reviews 2010-01 .. 2022-01 (the data's last
    review, as profiles/yelp.yaml says), inside its 2010..2023 range."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = []
    for number, (t, u, i, r) in enumerate(_ratings(users, items, per_user, "2010-01-01", "2022-02-01", seed)):
        date = datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        lines.append({"review_id": f"r{number:06d}", "user_id": f"u{u:04d}", "business_id": f"b{i:04d}",
                      "stars": float(r), "useful": 0, "funny": 0, "cool": 0, "date": date,
                      "text": f"Place {i} was {'great' if r >= 4 else 'so-so'} for user {u}."})
    (directory / "yelp_academic_dataset_review.json").write_text("".join(json.dumps(x) + "\n" for x in lines))
    businesses = [{"business_id": f"b{i:04d}", "name": f"The {TOPICS[i % len(TOPICS)].title()} Place {i}",
                   "address": f"{i} Main St", "city": "Springfield", "state": "PA", "stars": 4.0,
                   "categories": f"Restaurants, {TOPICS[i % len(TOPICS)].title()}"} for i in range(items)]
    (directory / "yelp_academic_dataset_business.json").write_text(
        "".join(json.dumps(x) + "\n" for x in businesses))
    return directory


def write_amazon2014_beauty(directory: Path, users: int = 160, items: int = 125, per_user: int = 25,
                            seed: int = 0) -> Path:
    """Amazon 2014 5-core Beauty: reviews_Beauty_5.json.gz (JSON lines) and meta_Beauty.json.gz
    (Python dict literals, as the 2014 metadata ships). Every user 25 reviews, every item 32: a
    5-core already; 125 items leave every user 100 never-reviewed ones, above the profile's 99
    top-N negatives (the real Beauty has 12k items), and leave-one-out keeps 3,680 train rows,
    above the 2 x 1,792 the profile's rec stages draw from params.yaml (the real Beauty: ~198k)."""
    directory.mkdir(parents=True, exist_ok=True)
    reviews = [{"reviewerID": f"A{u:04d}", "asin": f"B{i:05d}", "reviewerName": f"R {u}", "helpful": [0, 0],
                "reviewText": f"Item {i} is {'great' if r >= 4 else 'bad'} for my skin, user {u}.",
                "overall": float(r), "summary": "ok", "unixReviewTime": t, "reviewTime": "01 1, 2014"}
               for t, u, i, r in _ratings(users, items, per_user, "2012-01-01", "2014-07-01", seed)]
    _write_gz_lines(directory / "reviews_Beauty_5.json.gz", reviews)
    metas = [{"asin": f"B{i:05d}", "title": f"Cream number {i}", "categories": [["Beauty", "Skin Care"]],
              "description": f"A cream, kind {i % 3}.", "salesRank": {"Beauty": i}} for i in range(items)]
    _write_gz_lines(directory / "meta_Beauty.json.gz", metas, literal=True)
    return directory
