"""Hostile raw input through `run_ingest`: timestamps (non-finite, huge, implausibly old, in
milliseconds), ratings off the scale, undecodable lines, repeated (user, item) pairs. Each is an
error naming file:line:field, or under `on_bad_line: skip` a skipped line counted in the card."""
from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pytest
from params_base import section

from pipeline.ingest.build import run_ingest
from pipeline.ingest.config import IngestParams
from pipeline.ingest.lines import IngestError

HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float"
JAN_2020 = 1577836800
DAY = 86400
MONTHS = {"split": {"mode": "months", "train_months": 1, "valid_months": 1, "test_months": 1}}


def good_rows(users: int = 6, items: int = 12, per_user: int = 9) -> list[str]:
    """Rows spread over Jan-Mar 2020 (each user: three rows a month), distinct items per user."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(users):
        for k, i in enumerate(rng.choice(items, per_user, replace=False)):
            rows.append(f"u{u}\ti{i}\t{1 + (u + k) % 5}\t{JAN_2020 + (k // 3) * 31 * DAY + u * 3600 + k}")
    return rows


def write_raw(root: Path, rows: list[str], items: int = 12, encoding_errors: dict[int, bytes] | None = None) -> Path:
    """t.inter (header + rows; `encoding_errors` puts raw bytes on the given 1-based file lines) and t.item."""
    lines = [HEADER.encode()] + [row.encode() for row in rows]
    for number, data in (encoding_errors or {}).items():
        lines[number - 1] = data
    (root / "t.inter").write_bytes(b"\n".join(lines) + b"\n")
    meta = ["item_id:token\tmovie_title:token_seq"] + [f"i{i}\tTitle {i}" for i in range(items)]
    (root / "t.item").write_text("\n".join(meta) + "\n")
    return root / "t.inter"


def params(root: Path, **overrides) -> IngestParams:
    """params.yaml's ingest section on t.inter / t.item under `root`, monthly windows, `overrides`."""
    return IngestParams.model_validate(section("ingest", **{"source": {"path": str(root), "name": "t"}, **MONTHS,
                                                            **overrides}))


def ingest_frame(root: Path, **overrides):
    out = run_ingest(params(root, **overrides))
    return out, out.interactions.to_pandas()


@pytest.mark.parametrize(
    "value, shown",
    [
        ("inf", "inf"), ("-inf", "-inf"), ("1e308", "1e+308"), ("99999999999999999999999", "1e+23"),
        ("-2208988800", "-2208988800.0"),  # 1900-01-01
        ("-86400", "-86400.0"),  # 1969-12-31
        ("0", "0.0"),
    ],
)
def test_bad_timestamp_names_file_line_and_field_and_skip_counts_it(tmp_path, value, shown):
    rows = good_rows()
    rows.insert(6, f"u0\ti11\t4\t{value}")  # file line 8
    inter = write_raw(tmp_path, rows)
    message = f"{inter}:8: bad_timestamp: field 'timestamp' is {shown}, not a time from 1995-01-01 to 2050-01-01"
    with pytest.raises(IngestError, match=re.escape(message)):
        run_ingest(params(tmp_path))
    out, frame = ingest_frame(tmp_path, on_bad_line="skip")
    assert out.card["read"]["bad_lines_skipped"] == {"bad_timestamp": 1}
    assert out.card["read"]["bad_line_examples"][0].startswith(f"{inter}:8: bad_timestamp")
    assert len(frame) == len(rows) - 1 and frame.timestamp.min() >= JAN_2020


def test_a_1969_timestamp_no_longer_wrecks_the_halved_split(tmp_path):
    """Before: one 1969 row made it the only train row (train = the first month from the earliest row)."""
    rows = good_rows() + ["u1\ti11\t5\t-86400"]
    write_raw(tmp_path, rows)
    halved = {"split": {"mode": "last_months_halved", "train_months": 1}, "on_bad_line": "skip"}
    source = {"path": str(tmp_path), "name": "t"}
    out = run_ingest(IngestParams.model_validate(section("ingest", source=source, **halved)))
    assert out.card["splits"]["train"]["rows"] == 18  # January's rows
    assert out.card["read"]["bad_lines_skipped"] == {"bad_timestamp": 1}


def test_millisecond_timestamps_are_detected_or_declared(tmp_path):
    seconds = good_rows()
    _, expected = ingest_frame(write_raw(tmp_path, seconds).parent)
    millis = [f"{row.rsplit(chr(9), 1)[0]}\t{int(row.rsplit(chr(9), 1)[1]) * 1000 + 789}" for row in seconds]
    write_raw(tmp_path, millis)
    out, frame = ingest_frame(tmp_path)  # unit auto
    assert out.card["read"]["timestamp_units"] == {"ms": len(millis)}
    assert frame[["user", "item", "split", "timestamp"]].equals(expected[["user", "item", "split", "timestamp"]])
    declared, _ = ingest_frame(tmp_path, timestamps={"unit": "ms"})
    assert declared.card["read"]["timestamp_units"] == {"ms": len(millis)}
    with pytest.raises(IngestError, match=r"t.inter:2: bad_timestamp: .* in seconds \(ingest.timestamps\)"):
        run_ingest(params(tmp_path, timestamps={"unit": "s"}))


def test_ambiguous_auto_unit_range_is_rejected():
    with pytest.raises(ValueError, match="unit auto needs latest < 1000 x earliest"):
        IngestParams.model_validate(section("ingest", timestamps={"earliest": "1970-01-02", "unit": "auto"}))
    IngestParams.model_validate(section("ingest", timestamps={"earliest": "1970-01-02", "unit": "s"}))


@pytest.mark.parametrize("value", ["inf", "-inf", "1e9", "-3", "0", "5.5"])
def test_rating_outside_the_scale_is_a_bad_line(tmp_path, value):
    rows = good_rows()
    rows.insert(2, f"u0\ti11\t{value}\t{JAN_2020 + 5}")  # file line 4
    inter = write_raw(tmp_path, rows)
    with pytest.raises(IngestError, match=re.escape(f"{inter}:4: bad_rating: field 'rating' is {float(value)!r}, "
                                                    "not a rating from 1 to 5 (ingest.rating_scale)")):
        run_ingest(params(tmp_path))
    out, frame = ingest_frame(tmp_path, on_bad_line="skip")
    assert out.card["read"]["bad_lines_skipped"] == {"bad_rating": 1} and len(frame) == len(rows) - 1


def test_declared_rating_scale_and_json_numbers_beyond_float(tmp_path):
    rows = good_rows()
    rows[0] = rows[0].split("\t")[0] + "\t" + rows[0].split("\t")[1] + "\t0\t" + rows[0].split("\t")[3]
    write_raw(tmp_path, rows)
    out, frame = ingest_frame(tmp_path, rating_scale=[0, 10], label_threshold=5)
    assert out.card["read"]["rating_scale"] == [0.0, 10.0] and frame.rating.min() == 0
    review = {"reviewerID": "A", "asin": "B", "overall": 10 ** 400, "unixReviewTime": 1500000000}
    (tmp_path / "x.json.gz").write_bytes(gzip.compress((json.dumps(review) + "\n").encode()))
    (tmp_path / "meta_x.json.gz").write_bytes(gzip.compress(b'{"asin": "B"}\n'))
    amazon = {"source": {"format": "amazon", "path": str(tmp_path), "name": "x"}}
    with pytest.raises(IngestError, match=r"x.json.gz:1: bad_number: field 'overall'"):
        run_ingest(IngestParams.model_validate(section("ingest", **amazon)))


@pytest.mark.parametrize("bad_line", [37, 5_000])
def test_encoding_error_is_reported_at_its_line_and_skippable(tmp_path, bad_line):
    rows = [f"u{n % 60}\ti{n // 60}\t{1 + n % 5}\t{JAN_2020 + (n % 90) * DAY + n}" for n in range(6_000)]
    inter = write_raw(tmp_path, rows, items=100, encoding_errors={bad_line: b"u1\ti1\t4\t1577836800 caf\xe9"})
    with pytest.raises(IngestError, match=re.escape(f"{inter}:{bad_line}: bad_encoding: not valid utf-8 text "
                                                    "(byte 0xe9 at column 23)")):
        run_ingest(params(tmp_path))
    out, _ = ingest_frame(tmp_path, on_bad_line="skip")
    assert out.card["read"]["bad_lines_skipped"] == {"bad_encoding": 1}
    assert out.card["read"]["interaction_rows_parsed"] == len(rows) - 1


def test_duplicate_pairs_error_drop_or_keep_and_are_counted(tmp_path):
    rows = good_rows()
    first = rows[4]  # file line 6
    user, item, _, stamp = first.split("\t")
    rows += [f"{user}\t{item}\t1\t{int(stamp) + 40 * DAY}", first]  # a later re-rating and an exact copy
    inter = write_raw(tmp_path, rows)
    with pytest.raises(IngestError, match=re.escape(f"{inter}:{len(rows)}: user '{user}' and item '{item}' "
                                                    f"already on line 6 (2 repeated rows; set ingest.duplicates")):
        run_ingest(params(tmp_path))
    dropped, frame = ingest_frame(tmp_path, duplicates="drop")
    assert dropped.card["read"]["duplicates"] | {"examples": None} == {
        "policy": "drop", "repeated_rows": 2, "pairs_repeated": 1, "rows_dropped": 2, "examples": None}
    pairs = frame.groupby(["user", "item"]).size()
    assert pairs.max() == 1 and len(frame) == len(rows) - 2
    kept, frame = ingest_frame(tmp_path, duplicates="keep")
    assert kept.card["read"]["duplicates"]["repeated_rows"] == 2 and len(frame) == len(rows)


def test_no_time_range_message_only_when_a_range_is_set(tmp_path):
    inter = write_raw(tmp_path, [f"u{n}\ti{n}\t4\tsoon" for n in range(3)])
    with pytest.raises(IngestError) as raised:
        run_ingest(params(tmp_path, on_bad_line="skip"))
    assert str(raised.value) == f"{inter}: no usable interaction lines (3 bad lines skipped)"
    write_raw(tmp_path, good_rows())
    with pytest.raises(IngestError, match=r"none of the 54 interactions read is inside ingest.time_range "
                                          r"\(2021-01-01 .. None\)"):
        run_ingest(params(tmp_path, time_range={"start": "2021-01-01"}))
