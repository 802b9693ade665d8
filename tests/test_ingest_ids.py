"""The one id check every reader calls (pipeline.ingest.records.checked_id) on what used to slip
past it: a UTF-8 byte order mark opening a latin-1 file (read as 'ï»¿' glued to the first id), and
JSON ids that are lists, objects, booleans or floats (str()'d into ids nobody wrote). And messages
quote at most 60 characters of a raw value, escaped, whatever the line holds."""
from __future__ import annotations

import codecs
import gzip
import re
from pathlib import Path

import pytest

from pipeline.ingest.build import run_ingest
from pipeline.ingest.formats import FORMATS
from pipeline.ingest.lines import IngestError, LineIssues
from pipeline.ingest.records import TextLimit
from test_ingest_bad_input import good_rows, params, write_raw
from test_ingest_ids_labels_text import ID_FIELDS, interactions_file, items_file

LIMIT = TextLimit(100, 1000)


def read(fmt: str, which: str, path: Path, issues: LineIssues) -> list:
    spec = FORMATS[fmt]
    if which == "metadata item":
        return list(spec.read_items(path, issues, LIMIT))
    return list(spec.read_interactions(path, issues, False))


def with_bom(path: Path) -> Path:
    """`path` rewritten with a UTF-8 byte order mark in front (inside the gzip stream for .gz)."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(codecs.BOM_UTF8 + gzip.decompress(data)))
    else:
        path.write_bytes(codecs.BOM_UTF8 + data)
    return path


# What line 1 of a BOM-led file is, per format: the first id holds U+FEFF (bad_id), the RecBole
# header lacks its first column (an error), a JSON line is not an object (bad_json)
BOM_REASON = {"recbole": None, "ml100k": "bad_id", "ml1m": "bad_id", "amazon": "bad_json", "yelp": "bad_json"}
BOM_CASES = [(fmt, which) for fmt in FORMATS for which in ("user", "metadata item")]


@pytest.mark.parametrize(("fmt", "which"), BOM_CASES, ids=[f"{f}-{w}" for f, w in BOM_CASES])
def test_a_byte_order_mark_opening_a_file_is_never_part_of_an_id(tmp_path, fmt, which):
    """Before: ML-1M's latin-1 ratings.dat and ML-100k's u.item read the mark as 'ï»¿', a new user
    'ï»¿1' (and item 'ï»¿1') that printed almost like user 1."""
    if which == "metadata item":
        path, field, column = with_bom(items_file(fmt, tmp_path, "i2")), ID_FIELDS[fmt][2], "item_id"
    else:
        path, field, column = with_bom(interactions_file(fmt, tmp_path, "u2", "i2")), ID_FIELDS[fmt][0], "user_id"
    reason = BOM_REASON[fmt]
    expected = {"bad_id": rf"bad_id: field '{field}' is '\\ufeff1', which holds U\+FEFF",
                "bad_json": r"bad_json: starts with a byte order mark \(U\+FEFF\)",
                None: rf"header lacks column\(s\) \['{column}'\]; has .*'\\ufeff{column}'"}[reason]
    with pytest.raises(IngestError, match=rf"^{re.escape(str(path))}:1: {expected}"):
        read(fmt, which, path, LineIssues("error"))
    if reason is None:
        return  # a header is needed: the mark is an error under every policy
    issues = LineIssues("skip")
    rows = read(fmt, which, path, issues)
    assert issues.counts == {reason: 1} and [row.line for row in rows] == [2]


JSON_FORMATS = ("amazon", "yelp")
NOT_IDS = [(["U196"], r"\['U196'\], a list"), ({"id": "U196"}, r"\{'id': 'U196'\}, a dict"), (True, "True, a bool"),
           (196.0, "196.0, a float"), (1.5, "1.5, a float")]
JSON_CASES = [(fmt, which, value, shown) for fmt in JSON_FORMATS for which in ("user", "item", "metadata item")
              for value, shown in NOT_IDS]


@pytest.mark.parametrize(("fmt", "which", "value", "shown"), JSON_CASES,
                         ids=[f"{f}-{w}-{v!r}" for f, w, v, _ in JSON_CASES])
def test_a_json_id_that_is_not_a_string_or_an_integer_is_a_bad_line(tmp_path, fmt, which, value, shown):
    """Before: reviewerID ["U196"] became the user "['U196']"; true the user "True"."""
    if which == "metadata item":
        path = items_file(fmt, tmp_path, value)
    else:
        path = interactions_file(fmt, tmp_path, *((value, "i1") if which == "user" else ("u1", value)))
    field = ID_FIELDS[fmt][("user", "item", "metadata item").index(which)]
    message = rf"^{re.escape(str(path))}:2: bad_id: field '{field}' is {shown}, not a string or an integer \(set"
    with pytest.raises(IngestError, match=message):
        read(fmt, which, path, LineIssues("error"))
    issues = LineIssues("skip")
    rows = read(fmt, which, path, issues)
    assert issues.counts == {"bad_id": 1} and len(rows) == 1 and rows[0].item == "B"


def test_integer_json_ids_stay_ids_and_python_literal_tuples_do_not(tmp_path):
    path = interactions_file("amazon", tmp_path, 196, 242)
    rows = read("amazon", "user", path, LineIssues("error"))
    assert [(row.user, row.item) for row in rows] == [("A", "B"), ("196", "242")]
    meta = tmp_path / "meta_2014.json"  # Amazon 2014 metadata: Python dict literals
    meta.write_text("{'asin': 'B', 'title': 'x'}\n{'asin': ('B1',), 'title': 'y'}\n")
    with pytest.raises(IngestError, match=r":2: bad_id: field 'asin' is \('B1',\), a tuple, not a string"):
        read("amazon", "metadata item", meta, LineIssues("error"))


def test_a_nul_filled_id_is_named_in_one_short_line(tmp_path):
    """Before: the message quoted all 5,000 NULs (20,000 characters of '\\x00')."""
    path = interactions_file("ml100k", tmp_path, "\x00" * 5000, "i1")
    with pytest.raises(IngestError) as caught:
        read("ml100k", "user", path, LineIssues("error"))
    message = str(caught.value)
    assert message.startswith(f"{path}:2: bad_id: field 'user id' is '" + "\\x00" * 14 + "\\x0...")
    assert "(5000 characters), which holds U+0000 (a control character)" in message
    assert len(message) < len(str(path)) + 250


def test_long_values_are_cut_in_messages_and_in_the_card(tmp_path):
    rows = good_rows()
    rows.insert(3, "u1\ti2\t" + "9" * 3000 + "x\t1577836800")  # file line 5: a 3001-character rating
    write_raw(tmp_path, rows)
    with pytest.raises(IngestError) as caught:
        run_ingest(params(tmp_path))
    assert re.search(r"t\.inter:5: bad_number: field 'rating' is '9{59}\.\.\. \(3001 characters\), expected a number",
                     str(caught.value))
    assert len(str(caught.value)) < 400
    card = run_ingest(params(tmp_path, on_bad_line="skip")).card
    assert card["read"]["bad_lines_skipped"] == {"bad_number": 1}
    assert len(card["read"]["bad_line_examples"][0]) < 400
