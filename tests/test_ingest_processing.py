"""Ingest processing through `run_ingest` on tiny RecBole-format files: filters, splits,
histories, subsets, top-N candidates, metadata mismatches and empty splits."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from params_base import section

from pipeline.ingest.build import run_ingest
from pipeline.ingest.config import IngestParams
from pipeline.ingest.lines import IngestError


def stamp(year: int, month: int, day: int = 1, second: int = 0) -> int:
    return int(datetime(year, month, day, tzinfo=timezone.utc).timestamp()) + second


def write_dataset(root: Path, rows: list[tuple], extra_items: tuple[str, ...] = (), drop_items: tuple[str, ...] = ()) -> None:
    """rows: (user, item, rating, timestamp) with raw string ids; every item gets metadata."""
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    lines += [f"{u}\t{i}\t{r}\t{t}" for u, i, r, t in rows]
    (root / "t.inter").write_text("\n".join(lines) + "\n")
    items = sorted({row[1] for row in rows} - set(drop_items)) + list(extra_items)
    meta = ["item_id:token\tmovie_title:token_seq\tclass:token_seq"] + [f"{i}\tTitle {i}\tDrama" for i in items]
    (root / "t.item").write_text("\n".join(meta) + "\n")


def params(root: Path, **overrides) -> IngestParams:
    """params.yaml's ingest section on the files under `root`, `overrides` laid over it."""
    source = {"format": "recbole", "path": str(root), "name": "t"}
    return IngestParams.model_validate(section("ingest", source=source, **overrides))


def random_rows(seed: int = 0, users: int = 12, items: int = 30, per_user: int = 15) -> list[tuple]:
    """Rows over three calendar months (Jan-Mar 2020), random ratings 1-5."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(users):
        for i in rng.choice(items, per_user, replace=False):
            rows.append((f"u{u}", f"i{i}", int(rng.integers(1, 6)), stamp(2020, 1) + int(rng.integers(0, 90 * 86400))))
    return rows


MONTHS = {"split": {"mode": "months", "train_months": 1, "valid_months": 1, "test_months": 1}}
NO_CAP = {"valid_small": {"user_fraction": 0.5, "max_rows_per_user": None},
          "test_small": {"user_fraction": 0.5, "max_rows_per_user": None}, "test_tiny_rows": 5}


def test_k_core_iterates_where_one_pass_stops(tmp_path):
    # user a has 2 rows, one on item x (count 2: a, b); b has 1 row -> b dropped; then x has 1 row.
    rows = [("a", "x", 5, stamp(2020, 1, 1)), ("a", "y", 5, stamp(2020, 2, 1)), ("c", "y", 5, stamp(2020, 3, 1)),
            ("b", "x", 5, stamp(2020, 1, 2)), ("c", "z", 5, stamp(2020, 1, 3)), ("a", "z", 5, stamp(2020, 2, 3)),
            ("c", "y", 4, stamp(2020, 3, 2))]
    # users d, e: disliked rows in every month (each split needs both labels), kept by both filters
    rows += [(user, item, 1, stamp(2020, month, day)) for month, item in ((1, "w"), (2, "v"), (3, "u"))
             for user, day in (("d", 5), ("e", 6))]
    write_dataset(tmp_path, rows)
    split = {"mode": "months", "train_months": 1, "valid_months": 1, "test_months": 1}
    one = run_ingest(params(tmp_path, filter={"mode": "one_pass", "min_user_interactions": 2,
                                              "min_item_interactions": 2}, split=split, duplicates="keep"))
    assert one.card["filters"]["count_filter"]["rows_dropped"] == 1  # only b's row
    assert "x" in one.items.column("raw_id").to_pylist()  # x kept with a single row left
    core = run_ingest(params(tmp_path, filter={"mode": "k_core", "min_user_interactions": 2,
                                               "min_item_interactions": 2}, split=split, duplicates="keep"))
    assert "x" not in core.items.column("raw_id").to_pylist()
    assert core.card["filters"]["count_filter"]["rounds"] == 3 and core.interactions.num_rows == 5 + 6


def test_month_windows_and_rows_after_last_window(tmp_path):
    rows = random_rows() + [("u0", "i99", 5, stamp(2020, 4, 2))]  # April: after the test window
    write_dataset(tmp_path, rows)
    out = run_ingest(params(tmp_path, **MONTHS))
    frame = out.interactions.to_pandas()
    months = {"train": 1, "valid": 2, "test": 3}
    for name, month in months.items():
        stamps = frame.loc[frame.split == name, "timestamp"]
        assert stamps.min() >= stamp(2020, month) and stamps.max() < stamp(2020, month + 1)
    assert out.card["filters"]["rows_after_last_window_dropped"] == 1
    assert out.card["split"]["windows"]["valid"] == {"start": "2020-02-01", "end": "2020-03-01"}
    assert sum(out.card["splits"][s]["rows"] for s in months) == len(rows) - 1
    assert (frame.row == np.arange(len(frame))).all() and frame.timestamp.is_monotonic_increasing


def test_leave_one_out_last_to_test_second_last_to_valid(tmp_path):
    rows = random_rows() + [("solo", "i1", 5, stamp(2020, 1, 5)), ("solo", "i2", 5, stamp(2020, 1, 6))]
    write_dataset(tmp_path, rows)
    out = run_ingest(params(tmp_path, split={"mode": "leave_one_out"}))
    frame = out.interactions.to_pandas()
    for user, group in frame.groupby("user"):
        ordered = group.sort_values("row").split.tolist()
        if len(ordered) >= 3:
            assert ordered[-2:] == ["valid", "test"] and set(ordered[:-2]) == {"train"}
        else:
            assert set(ordered) == {"train"}
    assert out.card["splits"]["test"]["rows"] == 12


def test_history_is_earlier_rows_any_split_last_n(tmp_path, monkeypatch):
    monkeypatch.setattr("pipeline.ingest.histories._CHUNK_ROWS", 7)  # several chunks on tiny data
    write_dataset(tmp_path, random_rows(seed=3))
    out = run_ingest(params(tmp_path, history_length=4, **MONTHS))
    frame = out.interactions.to_pandas()
    crossed = 0
    for row in frame.itertuples():
        earlier = frame[(frame.user == row.user) & (frame.row < row.row)]
        assert list(row.history_items) == earlier.item.tolist()[-4:]
        assert list(row.history_labels) == earlier.label.tolist()[-4:]
        crossed += row.split == "test" and "train" in earlier.split.tolist()[-4:]
    assert crossed > 0  # some test rows see train rows in their history
    assert frame.history_items.map(len).max() == 4


def test_labels_ids_and_item_table(tmp_path):
    write_dataset(tmp_path, random_rows(seed=1))
    out = run_ingest(params(tmp_path, label_threshold=4, **MONTHS))
    frame = out.interactions.to_pandas()
    assert ((frame.rating >= 4) == (frame.label == 1)).all()
    assert sorted(frame.user.unique()) == list(range(out.users.num_rows))
    assert sorted(frame.item.unique()) == list(range(out.items.num_rows))
    items = out.items.to_pandas()
    assert (items.title == "Title " + items.raw_id).all()


def test_subsets_sample_whole_users_deterministically(tmp_path):
    write_dataset(tmp_path, random_rows(seed=2, users=40))
    first = run_ingest(params(tmp_path, subsets=NO_CAP, **MONTHS))
    again = run_ingest(params(tmp_path, subsets=NO_CAP, **MONTHS))
    other = run_ingest(params(tmp_path, subsets=NO_CAP, seed=7, **MONTHS))
    assert first.subsets.equals(again.subsets) and first.topn_candidates.equals(again.topn_candidates)
    assert not first.subsets.equals(other.subsets)
    frame = first.interactions.to_pandas()
    subsets = first.subsets.to_pandas()
    for name, split in (("valid_small", "valid"), ("test_small", "test")):
        rows = subsets[subsets.subset == name].row
        chosen = frame.loc[rows]
        assert (chosen.split == split).all()
        users = frame[frame.split == split].user.unique()
        assert chosen.user.nunique() == round(0.5 * len(users))
        whole = frame[(frame.split == split) & frame.user.isin(chosen.user)]
        assert sorted(whole.row) == sorted(rows)  # every row of each sampled user
    tiny = set(subsets[subsets.subset == "test_tiny"].row)
    assert len(tiny) == 5 and tiny <= set(subsets[subsets.subset == "test_small"].row)


def test_subset_caps_rows_per_user_and_total(tmp_path):
    write_dataset(tmp_path, random_rows(seed=2, users=40))
    caps = {"valid_small": {"user_fraction": 1.0, "max_rows_per_user": 2, "max_rows": 11},
            "test_small": {"user_fraction": 1.0, "max_rows_per_user": 3}}
    out = run_ingest(params(tmp_path, subsets=caps, **MONTHS))
    frame = out.interactions.to_pandas().set_index("row")
    subsets = out.subsets.to_pandas()
    valid = frame.loc[subsets[subsets.subset == "valid_small"].row]
    assert len(valid) <= 11 and valid.groupby("user").size().max() <= 2
    test = frame.loc[subsets[subsets.subset == "test_small"].row]
    assert test.groupby("user").size().max() <= 3
    assert test.user.nunique() == frame[frame.split == "test"].user.nunique()


def test_topn_candidates_first_liked_test_item_and_unseen_negatives(tmp_path):
    write_dataset(tmp_path, random_rows(seed=4, users=20, items=150))
    out = run_ingest(params(tmp_path, topn_negatives=20, topn_users=None, **MONTHS))
    frame = out.interactions.to_pandas()
    topn = out.topn_candidates.to_pandas()
    liked_test = frame[(frame.split == "test") & (frame.label == 1)]
    assert set(topn.user) == set(liked_test.user)
    for user, group in topn.groupby("user"):
        assert group.positive.sum() == 1 and len(group) == 21
        first_liked = liked_test[liked_test.user == user].iloc[0]
        assert group[group.positive == 1].item.iloc[0] == first_liked["item"]
        assert (group["row"] == first_liked["row"]).all()  # every candidate shows the positive's history
        seen = set(frame[frame.user == user].item)
        negatives = set(group[group.positive == 0].item)
        assert len(negatives) == 20 and not negatives & seen


def test_topn_users_caps_the_sampled_users(tmp_path):
    write_dataset(tmp_path, random_rows(seed=4, users=20, items=150))
    everyone = run_ingest(params(tmp_path, topn_negatives=5, topn_users=None, **MONTHS)).topn_candidates.to_pandas()
    capped = run_ingest(params(tmp_path, topn_negatives=5, topn_users=3, **MONTHS)).topn_candidates.to_pandas()
    assert everyone.user.nunique() > 3 and capped.user.nunique() == 3
    assert set(capped.user) <= set(everyone.user)


def test_unknown_item_in_metadata_and_item_without_metadata(tmp_path):
    rows = random_rows(seed=5)
    write_dataset(tmp_path, rows, extra_items=("ghost",))
    with pytest.raises(IngestError, match=r"t.item:\d+: unknown_item: metadata for item 'ghost'"):
        run_ingest(params(tmp_path, **MONTHS))
    out = run_ingest(params(tmp_path, on_unknown_item="skip", **MONTHS))
    assert out.card["read"]["unknown_items_skipped"] == {"unknown_item": 1}
    write_dataset(tmp_path, rows, drop_items=("i3",))
    with pytest.raises(IngestError, match=r"t.inter:\d+: item 'i3' has no metadata in .*t.item"):
        run_ingest(params(tmp_path, **MONTHS))
    out = run_ingest(params(tmp_path, on_unknown_item="skip", **MONTHS))
    dropped = sum(1 for row in rows if row[1] == "i3")
    assert out.card["read"]["rows_without_item_metadata_dropped"] == dropped > 0
    assert "i3" not in out.items.column("raw_id").to_pylist()


def test_bad_lines_skipped_are_counted_in_card(tmp_path):
    write_dataset(tmp_path, random_rows(seed=6))
    with open(tmp_path / "t.inter", "a") as handle:
        handle.write("u1\ti1\tgood\t5\n" + "u1\ti1\n")
    with pytest.raises(IngestError, match=r"t.inter:182: bad_number"):
        run_ingest(params(tmp_path, **MONTHS))
    out = run_ingest(params(tmp_path, on_bad_line="skip", **MONTHS))
    assert out.card["read"]["bad_lines_skipped"] == {"bad_number": 1, "bad_field_count": 1}


def test_empty_split_and_time_range(tmp_path):
    write_dataset(tmp_path, random_rows(seed=7))
    with pytest.raises(IngestError, match="split 'valid' is empty"):
        run_ingest(params(tmp_path, split={"mode": "months", "train_months": 2, "valid_months": 1, "test_months": 1},
                          time_range={"start": "2020-02-01"}))
    out = run_ingest(params(tmp_path, time_range={"start": "2020-02-01"},
                            split={"mode": "last_months_halved", "train_months": 1}))
    splits = out.card["splits"]
    assert abs(splits["valid"]["rows"] - splits["test"]["rows"]) <= 1
    assert out.card["filters"]["time_range"]["rows_outside"] == out.card["read"]["interaction_rows_parsed"] - \
        out.interactions.num_rows


def test_expected_rows_pass_when_they_match_and_name_both_counts_when_not(tmp_path):
    write_dataset(tmp_path, random_rows())
    out = run_ingest(params(tmp_path, **MONTHS, subsets=NO_CAP))
    counts = {name: stats["rows"] for name, stats in out.card["splits"].items()}
    assert min(counts.values()) > 0
    checked = run_ingest(params(tmp_path, **MONTHS, subsets=NO_CAP, expected_rows={**counts, "valid": None}))
    assert checked.card["splits"] == out.card["splits"]  # matching counts (and an unchecked one) change nothing
    wrong = {**counts, "train": counts["train"] + 1}
    with pytest.raises(IngestError) as raised:
        run_ingest(params(tmp_path, **MONTHS, subsets=NO_CAP, expected_rows=wrong))
    message = str(raised.value)
    assert message.startswith("ingest.expected_rows: ") and "\n" not in message
    got = "/".join(f"{counts[s]:,}" for s in ("train", "valid", "test"))
    want = "/".join(f"{wrong[s]:,}" for s in ("train", "valid", "test"))
    assert f"has {got} train/valid/test rows, the recipe's {want} (train differ)" in message
