"""Sizes that depend on the dataset (pipeline/sizes.py, stages/sizes.py): each required size that does
not fit is an error naming its key, fractions and `all` resolve to the right counts, the defaults on
ML-100k resolve to the numbers the stages used before (the same blocks), the profiles fit their
datasets, and the stage fails in seconds, before any teacher stage in dvc.yaml."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tiny_recbole
import yaml
from params_base import section

from pipeline.errors import BadParams
from pipeline.params import load_section
from pipeline.profiles import apply_sets, overlay, profile_sets
from pipeline.rdrec.params import RDRecParams
from pipeline.rec.params import RecParams
from pipeline.sizes import (PARAMS, DatasetCounts, by_section, check_sizes, cluster_count, dataset_counts,
                            rank_positives, read_sizes, resolve, train_shares)

REPO = Path(__file__).resolve().parents[1]
# The embedded ML-100k (docs/datasets.md); 43,100 liked train rows, 148 test users with a liked row.
ML100K = DatasetCounts(train_rows=77_985, liked_train_rows=43_100, train_users=736, items=1_682,
                       test_small_rows=597, test_tiny_rows=200, test_users_with_liked=148)
# The issue's Amazon-2018-format dataset: 3,660 ratings, 147 users, 221 items, train 3,047 rows.
AMAZON_SMALL = DatasetCounts(train_rows=3_047, liked_train_rows=1_900, train_users=147, items=221,
                             test_small_rows=280, test_tiny_rows=200, test_users_with_liked=60)


def project_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def resolved(params: dict, counts: DatasetCounts) -> dict[str, int]:
    return {size.key: size.resolved for size in check_sizes(read_sizes(params), counts)}


def test_the_defaults_on_ml100k_resolve_to_the_numbers_the_stages_used():
    sizes = resolved(project_params(), ML100K)
    assert sizes == {
        "ingest.subsets.test_tiny_rows": 200, "ingest.topn_users": 148, "keywords.max_items": 700,
        "traces.count": 24, "traces.gold.count": 32, "rationales.count": 128, "rec.stage1.train_rows": 1792,
        "rec.stage2.train_rows": 1792, "rdrec.train.rank_positives": 192, "experts.n": 2,
        "experts.train.train_rows": 768}
    assert set(sizes) == set(PARAMS) - {"experts.slots"}  # every key read is a size, slots bound experts.n


def test_the_issue_dataset_fails_on_the_train_rows_naming_both_keys_and_the_counts():
    with pytest.raises(BadParams) as err:
        check_sizes(read_sizes(project_params()), AMAZON_SMALL)
    assert str(err.value) == (
        "rec.stage1.train_rows + rec.stage2.train_rows ask for 3584 distinct train rows (1792 + 1792); this "
        "dataset's train split has 3047 (set fractions of the split such as 0.4, or all for "
        "rec.stage2.train_rows: the rows stage 1 leaves)")


def test_the_caps_past_the_dataset_mean_all_of_it():
    params = overlay(project_params(), {"keywords": {"max_items": None}, "traces": {"count": 5000},
                                        "rec": {"stage1": {"train_rows": 0.4}, "stage2": {"train_rows": 0.4}}})
    sizes = resolved(params, AMAZON_SMALL)
    assert sizes["keywords.max_items"] == 221 and sizes["traces.count"] == 3047
    assert sizes["rdrec.train.rank_positives"] == 192
    more = overlay(params, {"rdrec": {"train": {"rank_positives": 5000}}})
    assert resolved(more, AMAZON_SMALL)["rdrec.train.rank_positives"] == 1900


@pytest.mark.parametrize("stage1, stage2, expected", [
    (1500, 1500, (1500, 1500)),
    (0.4, 0.4, (1218, 1218)),  # floor(0.4 x 3047) = 1218
    (0.5, "all", (1523, 1524)),  # all = what stage 1 leaves
    (0.5, 0.5, (1523, 1523)),  # floors: two halves always fit
    (1000, "all", (1000, 2047)),
    (1792, "same", (1792, 1792)),  # same = stage 1's rows: no share of its own to fit
    ("all", "same", (3047, 3047)),  # the reference: both stages on the whole split
])
def test_train_shares_of_counts_fractions_and_all(stage1, stage2, expected):
    assert train_shares(stage1, stage2, 3047) == expected


def test_a_fraction_is_taken_as_written_not_as_its_binary_float():
    assert 0.29 * 100 < 29  # the float product falls just below
    assert resolve("rec.stage1.train_rows", 0.29, 100) == 29 and resolve("k", 1.0, 77_985) == 77_985


@pytest.mark.parametrize("stage1, stage2, key, words", [
    ("all", 1, "rec.stage1.train_rows + rec.stage2.train_rows", "ask for 3048 distinct train rows"),
    ("all", "all", "rec.stage2.train_rows", "'all' gives no train row"),
    (0.6, 0.6, "rec.stage1.train_rows + rec.stage2.train_rows", "ask for 3656"),
    (0.0001, 10, "rec.stage1.train_rows", "0.0001 gives no train row"),
    (1.5, 10, "rec.stage1.train_rows", "a fraction of the dataset's rows in (0, 1]"),
    (10, "half", "rec.stage2.train_rows", "(got 'half')"),
    (10, 0, "rec.stage2.train_rows", "a row count >= 1"),
    ("same", 10, "rec.stage1.train_rows", "'same' is for rec.stage2.train_rows only"),
    (0.0001, "same", "rec.stage1.train_rows", "0.0001 gives no train row"),
])
def test_train_rows_that_cannot_be_taken_name_their_key(stage1, stage2, key, words):
    with pytest.raises(BadParams) as err:
        train_shares(stage1, stage2, 3047)
    assert str(err.value).startswith(f"{key}") and words in str(err.value)


def test_stage_2_on_stage_1s_rows_fits_where_two_shares_do_not():
    same = overlay(project_params(), {"rec": {"stage2": {"train_rows": "same"}}})
    sizes = resolved(same, AMAZON_SMALL)  # the defaults' 1792 + 1792 do not fit its 3047 rows (above)
    assert sizes["rec.stage1.train_rows"] == sizes["rec.stage2.train_rows"] == 1792
    assert RecParams.model_validate(same["rec"]).stage2.train_rows == "same"  # the stage reads it as written


def test_rank_positives_are_a_cap_of_the_liked_train_rows():
    assert rank_positives(192, 1900) == 192 and rank_positives(192, 100) == 100
    assert rank_positives("all", 1900) == 1900 and rank_positives(0.5, 1901) == 950
    with pytest.raises(BadParams, match=r"^rdrec\.train\.rank_positives: 0\.0001 gives no row of this dataset's 1900"):
        rank_positives(0.0001, 1900)


def test_expert_clusters_need_more_users_with_train_rows_than_clusters():
    assert cluster_count(2, [0, 1], 3) == 2 and cluster_count(None, [0, 1, 2], 3) == 2
    assert cluster_count(None, [0, 1, 2], 10) == 3
    for n, slots, users in ((2, [0, 1], 2), (None, [0, 1], 2)):
        with pytest.raises(BadParams, match=r"^experts\.n: .* this dataset has 2 \(set a smaller experts\.n\)"):
            cluster_count(n, slots, users)


def test_every_size_that_does_not_fit_is_named_on_one_line():
    tiny = DatasetCounts(train_rows=30, liked_train_rows=12, train_users=2, items=12, test_small_rows=8,
                         test_tiny_rows=8, test_users_with_liked=2)
    with pytest.raises(BadParams) as err:
        check_sizes(read_sizes(project_params()), tiny)
    message = str(err.value)
    assert "\n" not in message and message.index("rec.stage1.train_rows + rec.stage2") < message.index("experts.n: 2")


def test_a_key_params_yaml_lacks_is_named():
    params = project_params()
    del params["rdrec"]["train"]["rank_positives"]
    with pytest.raises(BadParams, match=r"no key 'rdrec\.train\.rank_positives'"):
        read_sizes(params)


def test_the_params_models_accept_the_relative_forms_and_name_a_bad_one(tmp_path):
    rec = RecParams.model_validate(section("rec", stage1={"train_rows": 0.4}, stage2={"train_rows": "all"},
                                           overrides={"collm_seed1": {"seed": 1}}))
    assert (rec.stage1.train_rows, rec.stage2.train_rows) == (0.4, "all")
    assert rec.training("collm_seed1", 2).train_rows == "all"  # an override re-validates the dumped section
    rdrec = RDRecParams.model_validate(section("rdrec", train={"rank_positives": "all"}))
    assert rdrec.train.rank_positives == "all"
    params = overlay(project_params(), {"rec": {"stage1": {"train_rows": 1792.0}}})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(BadParams, match=r"rec\.stage1\.train_rows: a row count >= 1, .* \(got 1792\.0\)"):
        load_section("rec", RecParams, tmp_path / "params.yaml")


def test_dataset_counts_from_the_card_and_the_label_columns():
    group = lambda rows, users, items: {"rows": rows, "users": users, "items": items}  # noqa: E731
    card = {"totals": group(6, 3, 4), "splits": {"train": group(4, 2, 3)},
            "subsets": {"test_small": group(2, 2, 2), "test_tiny": group(1, 1, 1)}}
    user = np.array([0, 0, 1, 1, 2, 0])
    label = np.array([1, 0, 1, 1, 1, 0])
    split = np.array(["train", "train", "train", "train", "test", "test"], dtype=object)
    counts = dataset_counts(card, user, label, split)
    assert counts == DatasetCounts(train_rows=4, liked_train_rows=3, train_users=2, items=4, test_small_rows=2,
                                   test_tiny_rows=1, test_users_with_liked=1)


# The profiles' datasets as ThinkRec's public code splits them (profiles/ml1m.yaml: 33,891 train rows)
# and RDRec's Beauty 5-core with leave-one-out (198,502 ratings of 22,363 users: 153,776 train rows).
PROFILE_DATASETS = {
    "ml1m.yaml": DatasetCounts(train_rows=33_891, liked_train_rows=19_000, train_users=1_800, items=3_400,
                               test_small_rows=1_800, test_tiny_rows=200, test_users_with_liked=500),
    "rdrec-amazon2014.yaml": DatasetCounts(train_rows=153_776, liked_train_rows=120_000, train_users=22_363,
                                           items=12_101, test_small_rows=22_363, test_tiny_rows=200,
                                           test_users_with_liked=16_000),
}


def test_the_reference_profile_fits_ml1m_and_the_rdrec_profile_beauty():
    params = project_params()
    reference = profile_sets(params, [REPO / "profiles/thinkrec-reference.yaml", REPO / "profiles/ml1m.yaml"])
    sizes = resolved(apply_sets(copy.deepcopy(params), reference), PROFILE_DATASETS["ml1m.yaml"])
    # both stages on the whole train split (stage 2: stage 1's rows), as the reference trains them
    assert (sizes["rec.stage1.train_rows"], sizes["rec.stage2.train_rows"]) == (33_891, 33_891)
    assert sizes["keywords.max_items"] == 0 and sizes["traces.gold.count"] == 80  # ML-1M: genres, no LLM
    rdrec = profile_sets(params, [REPO / "profiles/rdrec-amazon2014.yaml"])
    beauty = resolved(apply_sets(copy.deepcopy(params), rdrec), PROFILE_DATASETS["rdrec-amazon2014.yaml"])
    assert (beauty["rec.stage1.train_rows"], beauty["rec.stage2.train_rows"]) == (1792, 1792)


def test_by_section_keeps_each_section_apart():
    sections = by_section(check_sizes(read_sizes(project_params()), ML100K))
    assert sorted(sections) == ["experts", "ingest", "keywords", "rationales", "rdrec", "rec", "traces"]
    assert sections["rec"]["rec.stage2.train_rows"] == {"asked": 1792, "of": "train rows", "available": 77_985,
                                                         "resolved": 1792, "kind": "required"}


def test_stage_blocks_read_the_resolved_rows_and_the_defaults_take_the_same_blocks():
    """The reading site (pipeline/rec/recipe.py): 0.5 / all take every train row, disjoint; the
    default counts take exactly the blocks the literal counts took before."""
    import tiny_ingest

    from pipeline.rec.packing import disjoint_shares, label_blocks
    from pipeline.rec.recipe import stage_blocks

    interactions = tiny_ingest.tiny_interactions(n_users=4, per_user=14)
    train = interactions[interactions["split"] == "train"]  # 40 rows
    halves = RecParams.model_validate(section("rec", stage1={"train_rows": 0.5}, stage2={"train_rows": "all"}))
    first, second = (sum(map(len, stage_blocks(interactions, halves, stage))) for stage in (1, 2))
    assert (first, second) == (20, 20)
    counts = RecParams.model_validate(section("rec", stage1={"train_rows": 12}, stage2={"train_rows": 9}))
    packing = counts.packing
    literal = disjoint_shares(label_blocks(train, packing.targets, packing.max_span_seconds), [12, 9], packing.seed)
    assert [stage_blocks(interactions, counts, stage) for stage in (1, 2)] == literal


def run_module(module: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", module], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_stage_fails_in_seconds_with_one_line_naming_the_key_then_writes_every_section(tmp_path):
    tiny_recbole.write_tiny_recbole(tmp_path, users=30, rows_per_user=12, items=40, days=89, seed=11)
    params = project_params()
    params["ingest"]["source"].update(path=str(tmp_path), name="tiny")
    params["ingest"]["split"].update(train_months=1, valid_months=1, test_months=1)
    params["ingest"]["topn_negatives"] = 5
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert run_module("stages.ingest", tmp_path).returncode == 0
    card = json.loads((tmp_path / "data/ingest/card.json").read_text())
    train_rows, items = card["splits"]["train"]["rows"], card["totals"]["items"]

    started = time.perf_counter()
    done = run_module("stages.sizes", tmp_path)
    assert time.perf_counter() - started < 30  # seconds, not the teacher's minutes
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [f"stages.sizes: error: rec.stage1.train_rows + rec.stage2.train_rows ask for 3584 distinct "
                     f"train rows (1792 + 1792); this dataset's train split has {train_rows} (set fractions of the "
                     f"split such as 0.4, or all for rec.stage2.train_rows: the rows stage 1 leaves)"]
    assert not (tmp_path / "data/sizes").exists()

    params["rec"]["stage1"]["train_rows"], params["rec"]["stage2"]["train_rows"] = 0.4, "all"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    done = run_module("stages.sizes", tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"sizes: keywords.max_items = 700: this dataset has {items} items, all of them are used" in done.stdout
    written = {path.name: json.loads(path.read_text()) for path in (tmp_path / "data/sizes").iterdir()}
    assert sorted(written) == ["experts.json", "ingest.json", "keywords.json", "rationales.json", "rdrec.json",
                               "rec.json", "traces.json"]
    rec = written["rec.json"]
    assert rec["rec.stage1.train_rows"]["resolved"] == int(0.4 * train_rows)
    assert rec["rec.stage2.train_rows"]["resolved"] == train_rows - int(0.4 * train_rows)
    assert rec["rec.stage2.train_rows"]["asked"] == "all"
    assert written["keywords.json"]["keywords.max_items"]["resolved"] == items


def test_dvc_yaml_runs_the_sizes_stage_before_every_teacher_stage_and_every_resolved_size():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    sizes = stages["sizes"]
    assert sizes["outs"] == ["data/sizes"] and sizes["params"] == list(PARAMS)
    assert {"data/ingest/card.json", "data/ingest/interactions.parquet"} <= set(sizes["deps"])
    names = list(stages)
    assert names.index("sizes") == names.index("ingest") + 1
    wanted = {"keywords": "keywords", "traces": "traces", "rationales": "rationales", "tallrec": "rec",
              "thinkrec_stage1": "rec", "collm": "rec", "thinkrec": "rec", "rdrec": "rdrec",
              "rdrec_no_rationales": "rdrec", "clusters": "experts"}
    for stage, section_name in wanted.items():
        assert f"data/sizes/{section_name}.json" in stages[stage]["deps"], stage
