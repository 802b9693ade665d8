"""The reference's evaluation options: ThinkRec's ranking-metric conventions (`evaluate.conventions`)
and row-sampled subsets (`ingest.subsets.*.row_fraction`), against hand-computed values; the
defaults give exactly the project's numbers and subsets."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import tiny_recbole
from params_base import section
from pydantic import ValidationError

from pipeline.ingest.build import run_ingest
from pipeline.ingest.config import IngestParams
from pipeline.ingest.samples import sample_rows, sample_user_subset
from pipeline.metrics.bootstrap import resample_counts
from pipeline.metrics.classification import auc, uauc
from pipeline.metrics.per_user import pointwise_table, weighted_metrics
from pipeline.metrics.ranking import per_user_ranking
from pipeline.metrics.report import Resamples, measure_model, model_report

# user 1: both labels, a positive tied with the negative and before it in row order
# user 2: two negatives; user 3: two positives; user 4: one row; user 5: 3 positives, 1 negative
ROWS = pd.DataFrame({
    "user":  [1, 1, 1, 2, 2, 3, 3, 4, 5, 5, 5, 5],
    "label": [1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0],
    "score": [0.9, 0.8, 0.8, 0.5, 0.4, 0.2, 0.3, 0.6, 0.1, 0.9, 0.8, 0.7],
}).assign(row=lambda frame: np.arange(len(frame)))
D2 = 1 / math.log2(3)  # the discount of rank 2
# per-user values by hand, users 1, 2, 3, 4, 5 (None: not counted)
PROJECT = {  # users with both labels (1, 5); user 1 ranks [1, 0, 1] (ties: negatives first)
    "ndcg@2": [1 / (1 + D2), None, None, None, 1.0],
    "map@1": [1.0, None, None, None, 1.0],  # AP over min(K, positives)
    "map@2": [1 / 2, None, None, None, 2 / 2],
    "hr@1": [1.0, None, None, None, 1.0],
}
REFERENCE = {  # users with >= 2 rows (1, 2, 3, 5); user 1 ranks [1, 1, 0] (ties: row order)
    "ndcg@2": [1.0, 0.0, 1.0, None, 1.0],
    "map@1": [1 / 2, 0.0, 1 / 2, None, 1 / 3],  # AP over all positives
    "map@2": [2 / 2, 0.0, 2 / 2, None, 2 / 3],
    "hr@1": [1.0, 0.0, 1.0, None, 1.0],
}
UAUC = (0.75 + 2 / 3) / 2  # users 1 (0.9 > 0.8, 0.8 = 0.8) and 5 (0.1 < 0.7 < 0.8, 0.9), both conventions


def as_array(values: list) -> np.ndarray:
    return np.array([np.nan if value is None else value for value in values], dtype=np.float64)


def mean(values: list) -> float:
    return float(np.mean([value for value in values if value is not None]))


def ranking(conventions: str | None) -> dict[str, np.ndarray]:
    args = (ROWS["user"].to_numpy(), ROWS["label"].to_numpy(), ROWS["score"].to_numpy(), [1, 2])
    return per_user_ranking(*args) if conventions is None else per_user_ranking(*args, conventions=conventions)


@pytest.mark.parametrize("conventions, expected", [(None, PROJECT), ("project", PROJECT), ("reference", REFERENCE)])
def test_per_user_ranking_by_hand(conventions, expected):
    result = ranking(conventions)
    for name, values in expected.items():
        np.testing.assert_allclose(result[name], as_array(values), err_msg=name)


def test_the_conventions_differ_on_single_label_users_ties_and_ap():
    for name in PROJECT:
        assert mean(PROJECT[name]) != pytest.approx(mean(REFERENCE[name])), name


def test_unknown_conventions_are_an_error():
    with pytest.raises(ValueError, match="unknown ranking conventions 'sklearn'"):
        ranking("sklearn")


def measured(conventions: str):
    rows = ROWS.copy()
    resamples = Resamples(pointwise=resample_counts(5, 50, seed=3), topn=resample_counts(1, 50, seed=3, stream=1))
    headline = ["auc", "uauc", "ndcg@2", "map@2"]
    evaluation = measure_model(rows, None, np.array([1, 2]), resamples, [1, 2], headline, 10, conventions)
    return evaluation, model_report(evaluation, {}, headline)


def test_reference_report_by_hand_and_it_says_its_conventions():
    _, report = measured("reference")
    assert report["conventions"] == "reference"
    assert report["ndcg@2"] == pytest.approx(mean(REFERENCE["ndcg@2"])) == pytest.approx(0.75)
    assert report["map@2"] == pytest.approx(mean(REFERENCE["map@2"]))
    assert report["all_k"]["map@1"] == pytest.approx(mean(REFERENCE["map@1"]))
    assert report["all_k"]["hr@1"] == pytest.approx(0.75)
    assert report["uauc"] == pytest.approx(UAUC) and report["n_uauc_users"] == 2
    assert report["auc"] == pytest.approx(auc(ROWS["label"], ROWS["score"]))
    assert report["n_rank_users"] == 4 and report["n_users"] == 5
    # warm = users 1 and 2: user 2 (all negative) counts 0 under the reference
    assert report["warm"]["ndcg@2"] == pytest.approx(0.5) and report["warm"]["n_rank_users"] == 2
    assert report["cold"]["n_rank_users"] == 2
    for name in ("ndcg@2", "map@2"):
        assert report[f"{name}_low"] <= report[name] <= report[f"{name}_high"]


def test_project_report_by_hand_has_no_conventions_key():
    _, report = measured("project")
    assert "conventions" not in report and "n_rank_users" not in report and "n_rank_users" not in report["warm"]
    assert report["ndcg@2"] == pytest.approx(mean(PROJECT["ndcg@2"]))
    assert report["map@2"] == pytest.approx(0.75)
    assert report["uauc"] == pytest.approx(UAUC) == pytest.approx(uauc(ROWS["user"], ROWS["label"], ROWS["score"])[0])


def test_reference_resamples_are_the_weighted_means_of_the_reference_values():
    evaluation, _ = measured("reference")
    table = pointwise_table(ROWS["user"].to_numpy(), ROWS["label"].to_numpy(), ROWS["score"].to_numpy(), [1, 2],
                            "reference")
    counts = resample_counts(5, 50, seed=3)
    values, counted = as_array(REFERENCE["ndcg@2"]), ~np.isnan(as_array(REFERENCE["ndcg@2"]))
    slow = [np.sum(row * np.where(counted, values, 0)) / np.sum(row * counted) if np.sum(row * counted) else np.nan
            for row in counts]
    np.testing.assert_allclose(evaluation.groups["all"].resampled["ndcg@2"], slow)
    np.testing.assert_allclose(weighted_metrics(table, counts)["ndcg@2"], slow)


# -- row-sampled subsets ---------------------------------------------------------------------------

def ingest_params(root, seed=2026, **subsets) -> IngestParams:
    split = {"mode": "months", "train_months": 1, "valid_months": 1, "test_months": 1}
    source = {"format": "recbole", "path": str(root), "name": "tiny"}
    return IngestParams.model_validate(section("ingest", source=source, split=split, seed=seed,
                                               subsets=subsets, topn_negatives=5))


ROW_SAMPLED = {"user_fraction": 1.0, "max_rows_per_user": None, "max_rows": None, "row_fraction": 0.25}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    tiny_recbole.write_tiny_recbole(root, users=40, rows_per_user=15, items=60, days=89, seed=5)
    return root


def subset_frame(out, name: str) -> pd.DataFrame:
    frame = out.interactions.to_pandas().set_index("row")
    return frame.loc[out.subsets.to_pandas().query("subset == @name")["row"]]


def test_row_fraction_samples_that_share_of_the_split_rows_reproducibly(tiny):
    halves = {"valid_small": ROW_SAMPLED, "test_small": {**ROW_SAMPLED, "row_fraction": 0.5}}
    out = run_ingest(ingest_params(tiny, **halves))
    frame = out.interactions.to_pandas()
    for name, split, fraction in (("valid_small", "valid", 0.25), ("test_small", "test", 0.5)):
        rows = subset_frame(out, name)
        assert (rows["split"] == split).all() and rows.index.is_unique
        assert len(rows) == round(fraction * (frame["split"] == split).sum())
    again, other = run_ingest(ingest_params(tiny, **halves)), run_ingest(ingest_params(tiny, seed=7, **halves))
    assert out.subsets.equals(again.subsets) and not out.subsets.equals(other.subsets)
    # rows, not users: some users keep only part of their split rows (user sampling keeps them whole)
    valid = frame[frame["split"] == "valid"]
    chosen = subset_frame(out, "valid_small")
    assert (chosen.groupby("user").size() < valid[valid["user"].isin(chosen["user"])].groupby("user").size()).any()
    tiny_rows = set(out.subsets.to_pandas().query("subset == 'test_tiny'")["row"])
    assert tiny_rows <= set(subset_frame(out, "test_small").index)


def test_row_fraction_with_user_sampling_keys_is_refused_naming_them():
    with pytest.raises(ValidationError, match=r"row_fraction 0.25 samples rows, not users.*\(max_rows_per_user is 4\)"):
        IngestParams.model_validate(section("ingest", subsets={"test_small": {"row_fraction": 0.25}}))
    with pytest.raises(ValidationError, match=r"user_fraction is 0.5"):
        IngestParams.model_validate(section("ingest", subsets={"valid_small": {**ROW_SAMPLED, "user_fraction": 0.5}}))


def test_default_subsets_are_the_user_sampled_ones(tiny):
    params = ingest_params(tiny)
    assert params.subsets.valid_small.row_fraction is None and params.subsets.test_small.row_fraction is None
    out = run_ingest(params)
    split = out.interactions.column("split").to_numpy(zero_copy_only=False)
    user = out.interactions.column("user").to_numpy()
    # the subsets as sampled before row_fraction existed: users, in this order, from the ingest seed
    rng = np.random.default_rng(params.seed)
    valid_small = sample_user_subset(np.flatnonzero(split == "valid"), user, params.subsets.valid_small, rng)
    test_small = sample_user_subset(np.flatnonzero(split == "test"), user, params.subsets.test_small, rng)
    test_tiny = sample_rows(test_small, params.subsets.test_tiny_rows, rng)
    subsets = out.subsets.to_pandas()
    for name, rows in (("valid_small", valid_small), ("test_small", test_small), ("test_tiny", test_tiny)):
        np.testing.assert_array_equal(subsets.query("subset == @name")["row"].to_numpy(), rows)
