"""User-level bootstrap, warm/cold groups, paired differences and ties, against slow references."""
import time

import numpy as np
import pandas as pd
import pytest

from pipeline.metrics.bootstrap import percentile_interval, resample_counts
from pipeline.metrics.classification import auc, uauc
from pipeline.metrics.per_user import pointwise_table, topn_table, weighted_metrics
from pipeline.metrics.ranking import per_user_ranking
from pipeline.metrics.report import Resamples, measure_model, model_report, paired_report
from pipeline.metrics.ties import tied_pairs
from pipeline.metrics.topn import positive_ranks

KS = [1, 3, 5]
HEADLINE = ["auc", "uauc", "ndcg@5", "topn_hr@3", "topn_ndcg@3"]


def pointwise_rows(n_users=12, seed=0) -> pd.DataFrame:
    """Users with 2-12 rows each (one user all positive), scores rounded to force ties."""
    rng = np.random.default_rng(seed)
    frames = []
    for user in range(n_users):
        size = int(rng.integers(2, 13))
        labels = rng.integers(0, 2, size) if user else np.ones(size, dtype=int)
        scores = np.round(labels * 0.5 + rng.normal(size=size), 1)
        frames.append(pd.DataFrame({"user": 100 + 7 * user, "label": labels, "score": scores}))
    rows = pd.concat(frames, ignore_index=True)
    return rows.sample(frac=1.0, random_state=seed, ignore_index=True).assign(row=lambda f: np.arange(len(f)))


def topn_rows(n_users=9, candidates=6, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users) * 3, candidates)
    positive = np.tile(np.r_[1, np.zeros(candidates - 1, dtype=int)], n_users)
    scores = np.round(rng.normal(size=users.size) + positive, 1)
    return pd.DataFrame({"user": users, "item": np.arange(users.size), "positive": positive, "score": scores})


def resampled_frame(frame: pd.DataFrame, users: np.ndarray, counts: np.ndarray) -> pd.DataFrame:
    """The rows of a resample spelled out: each drawn copy of a user is a new user."""
    copies = []
    for user, count in zip(users, counts):
        for copy in range(count):
            copies.append(frame[frame["user"] == user].assign(user=len(copies)))
    return pd.concat(copies, ignore_index=True)


def test_resamples_depend_on_the_seed_only_and_draw_every_user_slot():
    counts = resample_counts(7, 50, seed=3)
    assert counts.shape == (50, 7) and (counts.sum(axis=1) == 7).all()
    np.testing.assert_array_equal(counts, resample_counts(7, 50, seed=3))
    assert not np.array_equal(counts, resample_counts(7, 50, seed=4))
    assert not np.array_equal(counts, resample_counts(7, 50, seed=3, stream=1))


def test_vectorised_resamples_match_a_slow_loop_over_spelled_out_resamples():
    rows, topn = pointwise_rows(), topn_rows()
    table = pointwise_table(rows["user"].to_numpy(), rows["label"].to_numpy(), rows["score"].to_numpy(), KS)
    counts = resample_counts(table.users.size, 40, seed=1)
    fast = weighted_metrics(table, counts)
    topn_tab = topn_table(topn["user"].to_numpy(), topn["positive"].to_numpy(), topn["score"].to_numpy(), KS)
    topn_counts = resample_counts(topn_tab.users.size, 40, seed=1, stream=1)
    fast_topn = weighted_metrics(topn_tab, topn_counts)
    for b in range(40):
        sample = resampled_frame(rows, table.users, counts[b])
        labels, scores, users = sample["label"].to_numpy(), sample["score"].to_numpy(), sample["user"].to_numpy()
        assert fast["auc"][b] == pytest.approx(auc(labels, scores))
        assert fast["uauc"][b] == pytest.approx(uauc(users, labels, scores)[0])
        ranking = per_user_ranking(users, labels, scores, KS)
        for name in ("ndcg@5", "map@3", "hr@1"):
            assert fast[name][b] == pytest.approx(np.nanmean(ranking[name]))
        top = resampled_frame(topn, topn_tab.users, topn_counts[b])
        ranks = positive_ranks(top["user"].to_numpy(), top["positive"].to_numpy(), top["score"].to_numpy())
        assert fast_topn["topn_hr@3"][b] == pytest.approx((ranks < 3).mean())
        assert fast_topn["topn_ndcg@3"][b] == pytest.approx(np.where(ranks < 3, 1 / np.log2(ranks + 2), 0).mean())


def test_percentile_interval_skips_undefined_resamples():
    values = np.r_[np.arange(1, 101, dtype=float), np.nan, np.nan]
    assert percentile_interval(values) == pytest.approx((np.percentile(values[:100], 2.5), np.percentile(values[:100], 97.5)))
    assert percentile_interval(np.array([np.nan])) == (None, None)


def measured(rows, topn, warm_users, seed=5, resamples=200):
    counts = Resamples(pointwise=resample_counts(rows["user"].nunique(), resamples, seed),
                       topn=resample_counts(topn["user"].nunique(), resamples, seed, stream=1))
    return measure_model(rows, topn, np.asarray(warm_users), counts, [1, 10], HEADLINE, 20)


def test_point_metrics_are_the_plain_metrics_and_intervals_contain_them():
    rows, topn = pointwise_rows(), topn_rows()
    report = model_report(measured(rows, topn, warm_users=[]), {}, HEADLINE)
    labels, scores, users = rows["label"].to_numpy(), rows["score"].to_numpy(), rows["user"].to_numpy()
    assert report["auc"] == pytest.approx(auc(labels, scores))
    assert report["uauc"] == pytest.approx(uauc(users, labels, scores)[0])
    assert report["ndcg@5"] == pytest.approx(np.nanmean(per_user_ranking(users, labels, scores, [5])["ndcg@5"]))
    for name in HEADLINE:
        assert report[f"{name}_low"] <= report[name] <= report[f"{name}_high"]
    assert report["auc_low"] < report["auc_high"]
    assert {"ndcg@1", "map@10", "hr@10", "topn_hr@1", "topn_ndcg@10"} <= set(report["all_k"])
    assert "ndcg@5" not in report["all_k"]
    assert report["n_uauc_users"] == uauc(users, labels, scores)[1] < report["n_users"]  # user 0 all positive


def test_warm_and_cold_counts_add_up_and_each_group_is_its_users_alone():
    rows, topn = pointwise_rows(), topn_rows()
    warm_users = [100, 107, 114, 121, 3, 6]  # pointwise ids 100 + 7u, top-N ids 3u
    report = model_report(measured(rows, topn, warm_users), {}, HEADLINE)
    for key in ("n_rows", "n_users", "n_uauc_users", "topn_users"):
        assert report["warm"][key] + report["cold"][key] == report[key]
    assert report["warm"]["n_users"] == 4 and report["warm"]["topn_users"] == 2
    cold = rows[~rows["user"].isin(warm_users)]
    assert report["cold"]["auc"] == pytest.approx(auc(cold["label"], cold["score"]))
    assert report["cold"]["positive_rate"] == pytest.approx(cold["label"].mean())
    cold_topn = topn[~topn["user"].isin(warm_users)]
    ranks = positive_ranks(cold_topn["user"].to_numpy(), cold_topn["positive"].to_numpy(), cold_topn["score"].to_numpy())
    assert report["cold"]["topn_hr@3"] == pytest.approx((ranks < 3).mean())


def test_paired_difference_with_itself_is_zero_and_otherwise_the_difference_of_the_resamples():
    rows, topn = pointwise_rows(), topn_rows()
    model = measured(rows, topn, warm_users=[]).groups["all"]
    same = paired_report(model, model, HEADLINE)
    assert all(value == 0.0 for value in same.values())
    other = measured(rows.assign(score=-rows["score"]), topn, warm_users=[]).groups["all"]
    paired = paired_report(model, other, HEADLINE)
    assert paired["auc"] == pytest.approx(model.point["auc"] - other.point["auc"])
    difference = model.resampled["auc"] - other.resampled["auc"]
    assert (paired["auc_low"], paired["auc_high"]) == percentile_interval(difference)
    assert paired["topn_hr@3"] == 0.0  # same top-N scores


def test_constant_scores_have_auc_one_half_and_all_pairs_tied():
    rows, topn = pointwise_rows(), topn_rows()
    report = model_report(measured(rows.assign(score=0.25), topn, warm_users=[]), {}, HEADLINE)
    assert report["auc"] == 0.5 and report["uauc"] == 0.5
    n = len(rows)
    per_user = rows.groupby("user").size()
    assert report["ties"] == {"pairs": n * (n - 1) // 2,
                              "pairs_within_users": int((per_user * (per_user - 1) // 2).sum()),
                              "distinct_scores": 1}


def test_tied_pairs_by_hand():
    users = np.array([1, 1, 2, 2, 2])
    scores = np.array([0.5, 0.5, 0.5, 0.1, 0.1])
    # equal 0.5: 3 rows -> 3 pairs; equal 0.1: 1 pair; within users: (1: 0.5, 0.5) and (2: 0.1, 0.1)
    assert tied_pairs(users, scores) == {"pairs": 4, "pairs_within_users": 2, "distinct_scores": 2}


def test_a_metric_no_user_counts_for_is_null_in_json():
    rows = pointwise_rows().assign(label=1)  # no negatives: AUC, UAUC, NDCG undefined
    report = model_report(measured(rows, topn_rows(), warm_users=[]), {}, HEADLINE)
    assert report["auc"] is None and report["auc_low"] is None and report["uauc"] is None
    assert report["all_k"]["ndcg@1"] is None


def test_ten_models_by_a_thousand_resamples_on_three_thousand_rows_take_seconds():
    rng = np.random.default_rng(0)
    users = rng.integers(0, 300, 3000)
    rows = pd.DataFrame({"row": np.arange(3000), "user": users, "label": rng.integers(0, 2, 3000)})
    topn = topn_rows(n_users=64, candidates=100)
    counts = Resamples(pointwise=resample_counts(np.unique(users).size, 1000, 0),
                       topn=resample_counts(64, 1000, 0, stream=1))
    start = time.perf_counter()
    for model in range(10):
        scores = rows.assign(score=rows["label"] * 0.3 + rng.normal(size=3000))
        measure_model(scores, topn, np.arange(150), counts, [1, 2, 3, 5, 10], HEADLINE, 300)
    assert time.perf_counter() - start < 30  # ~5 s measured on the shared 2-core machine
