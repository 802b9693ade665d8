"""Every reader checks user and item ids (empty, blank, or holding a character that does not show:
a bad line naming file:line and the dataset's field, skipped and counted under on_bad_line: skip);
each split needs both labels (an error naming ingest.label_threshold); text cuts bound characters
as well as words, so a title without spaces cannot reach the prompts whole."""
from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from params_base import section

from pipeline.ingest.build import run_ingest
from pipeline.ingest.config import IngestParams
from pipeline.ingest.formats import FORMATS
from pipeline.ingest.lines import IngestError, LineIssues
from pipeline.ingest.records import TextLimit
from test_ingest_bad_input import good_rows, params, write_raw

GENRES = "|".join(["0"] * 18 + ["1"])


def interactions_file(fmt: str, root: Path, user: str, item: str) -> Path:
    """A two-line interactions file of `fmt` whose last line (3 under RecBole's header, else 2) has `user`, `item`."""
    if fmt == "recbole":
        text = ("user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t1\t4\t881250949\n"
                f"{user}\t{item}\t4\t881250949\n")
        return _write(root / "d.inter", text, "utf-8")
    if fmt == "ml100k":
        return _write(root / "u.data", f"1\t1\t4\t881250949\n{user}\t{item}\t4\t881250949\n", "utf-8")
    if fmt == "ml1m":
        return _write(root / "ratings.dat", f"1::1::4::978300760\n{user}::{item}::4::978300760\n", "latin-1")
    first = {"amazon": {"reviewerID": "A", "asin": "B", "overall": 4.0, "unixReviewTime": 1500000000},
             "yelp": {"user_id": "A", "business_id": "B", "stars": 4, "date": "2017-05-01 10:00:00"}}[fmt]
    user_field, item_field = list(first)[:2]
    lines = [json.dumps(first), json.dumps({**first, user_field: user, item_field: item})]
    if fmt == "amazon":
        (root / "x.json.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
        return root / "x.json.gz"
    return _write(root / "review.json", "\n".join(lines) + "\n", "utf-8")


def items_file(fmt: str, root: Path, item: str, title: str = "Heat") -> Path:
    """A two-item metadata file of `fmt` whose last line (as above) describes `item` with `title`."""
    if fmt == "recbole":
        return _write(root / "d.item", f"item_id:token\tmovie_title:token_seq\n1\tToy Story\n{item}\t{title}\n", "utf-8")
    if fmt == "ml100k":
        return _write(root / "u.item", f"1|Toy Story|01-Jan-1995||x|{GENRES}\n{item}|{title}|01-Jan-1995||x|{GENRES}\n",
                      "latin-1")
    if fmt == "ml1m":
        return _write(root / "movies.dat", f"1::Toy Story (1995)::Comedy\n{item}::{title} (1995)::Action\n", "latin-1")
    key, name = ("asin", "title") if fmt == "amazon" else ("business_id", "name")
    return _write(root / "meta.json", json.dumps({key: "B", name: "x"}) + "\n" + json.dumps({key: item, name: title})
                  + "\n", "utf-8")


def _write(path: Path, text: str, encoding: str) -> Path:
    path.write_text(text, encoding=encoding)
    return path


ID_FIELDS = {"recbole": ("user_id", "item_id", "item_id"), "ml100k": ("user id", "item id", "movie id"),
             "ml1m": ("UserID", "MovieID", "MovieID"), "amazon": ("reviewerID", "asin", "asin"),
             "yelp": ("user_id", "business_id", "business_id")}
# (id, reason): latin-1 formats cannot hold U+200B or U+FEFF, so those get other invisible characters
BAD_IDS = {"utf-8": [("", "missing_id"), ("   ", "missing_id"), ("u\u200b1", "bad_id"), ("\ufeffu1", "bad_id"),
                     ("u\x071", "bad_id"), ("u1\u00a0", "bad_id"), ("u\u20281", "bad_id")],
           "latin-1": [("", "missing_id"), (" ", "missing_id"), ("u\x071", "bad_id"), ("u1\u00a0", "bad_id"),
                       ("u\x851", "bad_id"), ("\x7fu1", "bad_id")]}
CASES = [(fmt, bad, reason) for fmt in FORMATS
         for bad, reason in BAD_IDS["latin-1" if fmt in ("ml1m",) else "utf-8"]]


@pytest.mark.parametrize(("fmt", "bad", "reason"), CASES, ids=[f"{f}-{b!r}" for f, b, _ in CASES])
@pytest.mark.parametrize("which", ["user", "item", "metadata item"])
def test_a_bad_id_is_a_bad_line_naming_file_line_and_field(tmp_path, fmt, bad, reason, which):
    if fmt == "ml100k" and which == "metadata item" and bad in ("u\u200b1", "\ufeffu1", "u\u20281"):
        pytest.skip("u.item is latin-1")
    spec = FORMATS[fmt]
    field = ID_FIELDS[fmt][("user", "item", "metadata item").index(which)]
    if which == "metadata item":
        path = items_file(fmt, tmp_path, bad)
        read = lambda issues: list(spec.read_items(path, issues, TextLimit(100, 1000)))  # noqa: E731
    else:
        path = interactions_file(fmt, tmp_path, *((bad, "i1") if which == "user" else ("u1", bad)))
        read = lambda issues: list(spec.read_interactions(path, issues, False))  # noqa: E731
    line = 3 if fmt == "recbole" else 2
    with pytest.raises(IngestError, match=rf"^{re.escape(str(path))}:{line}: {reason}: field '{field}'"):
        read(LineIssues("error"))
    issues = LineIssues("skip")
    assert len(read(issues)) == 1 and issues.counts == {reason: 1}


def test_surrounding_spaces_are_not_part_of_an_id(tmp_path):
    path = interactions_file("recbole", tmp_path, " u1 ", "i1 ")
    rows = list(FORMATS["recbole"].read_interactions(path, LineIssues("error"), False))
    assert (rows[1].user, rows[1].item) == ("u1", "i1")


@pytest.mark.parametrize(("split", "threshold", "missing"), [("test", 5, "positive"), ("train", 1, "negative")])
def test_a_split_without_both_labels_names_the_threshold(tmp_path, split, threshold, missing):
    rows = good_rows()
    # ratings of the chosen split's rows (March 2020 = test, Jan = train) set so one label is absent
    month = {"train": 0, "test": 2}[split]
    fixed = []
    for row in rows:
        user, item, rating, stamp = row.split("\t")
        in_split = (int(stamp) - 1577836800) // (31 * 86400) == month
        fixed.append("\t".join([user, item, "4" if in_split and missing == "positive" else rating, stamp]))
    if missing == "negative":  # threshold 1: every rating is liked everywhere
        fixed = rows
    write_raw(tmp_path, fixed)
    with pytest.raises(IngestError, match=rf"^ingest\.label_threshold: split '{split}' has no {missing} label"):
        run_ingest(params(tmp_path, label_threshold=threshold))


def test_a_title_without_spaces_is_cut_to_max_text_chars(tmp_path):
    title = "電影" * 5000  # 10,000 characters, one "word"
    limit = TextLimit(words=100, chars=120)
    for fmt in FORMATS:
        long = "Heat " + (title if fmt not in ("ml100k", "ml1m") else "é" * 10_000)  # latin-1 files
        meta = list(FORMATS[fmt].read_items(items_file(fmt, tmp_path, "i9", long), LineIssues(), limit))
        assert len(meta[1].title) <= 120 and meta[1].title.startswith("Heat "), fmt
    words = list(FORMATS["recbole"].read_items(items_file("recbole", tmp_path, "i9", "a b c d"), LineIssues(),
                                               TextLimit(words=2, chars=120)))
    assert words[1].title == "a b"


def test_the_character_bound_reaches_the_items_table(tmp_path):
    write_raw(tmp_path, good_rows())
    meta = ["item_id:token\tmovie_title:token_seq"] + [f"i{i}\t{'長' * 5000}" for i in range(12)]
    (tmp_path / "t.item").write_text("\n".join(meta) + "\n")
    out = run_ingest(params(tmp_path, max_text_chars=50))
    assert out.items.to_pandas()["title"].str.len().max() == 50
    assert IngestParams.model_validate(section("ingest")).max_text_chars >= 100  # ML-100k titles (< 100) stay whole
