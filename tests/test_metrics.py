"""Metrics against hand-computed values and scikit-learn, on cases where implementations differ."""
import numpy as np
import pytest
from sklearn.metrics import ndcg_score, roc_auc_score, roc_curve

from pipeline.metrics.classification import auc, roc_points, score_runs, uauc, weighted_auc
from pipeline.metrics.ranking import average_precision_at_k, hit_at_k, ndcg_at_k, per_user_ranking, ranked_labels
from pipeline.metrics.topn import positive_ranks, topn_per_user


def test_auc_counts_ties_as_half():
    # pairs (pos, neg): (.5,.5)=0.5, (.5,.1)=1, (.9,.5)=1, (.9,.1)=1 -> 3.5 / 4
    assert auc(np.array([1, 0, 1, 0]), np.array([0.5, 0.5, 0.9, 0.1])) == pytest.approx(0.875)


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_sklearn_with_many_ties(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 300)
    scores = rng.integers(0, 4, 300).astype(float)  # heavy ties
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))


def test_auc_of_one_class_is_nan():
    assert np.isnan(auc(np.array([1, 1]), np.array([0.1, 0.2])))


def test_uauc_skips_users_with_one_class_and_weights_users_equally():
    users = np.array([7, 7, 3, 3, 5, 5, 5])
    labels = np.array([1, 0, 1, 1, 0, 1, 0])
    scores = np.array([0.9, 0.1, 0.2, 0.3, 0.3, 0.2, 0.1])
    value, n_users = uauc(users, labels, scores)
    # user 7: 1.0; user 3: only positives, skipped; user 5: 0.5 (beats one of two negatives)
    assert n_users == 2
    assert value == pytest.approx(0.75)
    assert value != pytest.approx(auc(labels, scores))


def test_ties_rank_negatives_first():
    assert ranked_labels(np.array([1, 0, 0]), np.array([0.5, 0.5, 0.9])).tolist() == [0, 0, 1]


def test_ndcg_on_a_tie_is_pessimistic_where_sklearn_averages():
    labels, scores = np.array([[1, 0]]), np.array([[0.5, 0.5]])
    ranked = ranked_labels(labels[0], scores[0])
    assert ndcg_at_k(ranked, 1) == 0.0
    assert ndcg_at_k(ranked, 2) == pytest.approx(1 / np.log2(3))
    assert ndcg_score(labels, scores, k=1) == pytest.approx(0.5)  # tie-averaged


@pytest.mark.parametrize("k", [1, 2, 3, 5, 10, 50])
def test_ndcg_matches_sklearn_without_ties_including_k_beyond_the_list(k):
    rng = np.random.default_rng(k)
    for size in (2, 4, 7, 12):
        labels = rng.integers(0, 2, size)
        labels[0], labels[1] = 1, 0
        scores = rng.permutation(size).astype(float)
        ours = ndcg_at_k(ranked_labels(labels, scores), k)
        assert ours == pytest.approx(ndcg_score(labels[None], scores[None], k=k))


def test_average_precision_by_hand():
    ranked = np.array([1, 0, 1])
    assert average_precision_at_k(ranked, 3) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision_at_k(ranked, 2) == pytest.approx(1 / 2)  # divides by min(k, 2)
    assert average_precision_at_k(ranked, 10) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision_at_k(np.array([0, 0, 1]), 2) == 0.0


def test_hit_at_k():
    ranked = np.array([0, 1])
    assert hit_at_k(ranked, 1) == 0.0
    assert hit_at_k(ranked, 2) == 1.0
    assert hit_at_k(ranked, 10) == 1.0


def test_per_user_ranking_counts_only_users_with_both_classes():
    users = np.array([3, 3, 1, 1, 1, 2, 2])
    labels = np.array([0, 0, 0, 1, 0, 1, 1])
    scores = np.array([0.5, 0.4, 0.9, 0.8, 0.1, 0.3, 0.2])
    result = per_user_ranking(users, labels, scores, [1, 2])
    # users in ascending id order: 1 ranks its positive second; 2 only positives, 3 only negatives
    np.testing.assert_array_equal(result["hr@1"], [0.0, np.nan, np.nan])
    np.testing.assert_array_equal(result["hr@2"], [1.0, np.nan, np.nan])
    assert result["ndcg@2"][0] == pytest.approx(1 / np.log2(3))
    assert result["map@2"][0] == pytest.approx(0.5)


def test_topn_rank_counts_tied_negatives_above_the_positive():
    users = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    positive = np.array([1, 0, 0, 0, 0, 1, 0, 0])
    scores = np.array([0.5, 0.5, 0.7, 0.1, 0.2, 0.9, 0.3, 0.1])
    ranks = positive_ranks(users, positive, scores)
    assert ranks.tolist() == [2, 0]
    result = topn_per_user(ranks, [1, 3])
    assert result["topn_hr@1"].tolist() == [0.0, 1.0]
    assert result["topn_hr@3"].tolist() == [1.0, 1.0]
    assert result["topn_ndcg@3"] == pytest.approx([1 / np.log2(4), 1.0])


def test_topn_requires_exactly_one_positive_per_user():
    with pytest.raises(ValueError, match="user 4: 2 positives"):
        positive_ranks(np.array([4, 4, 4]), np.array([1, 1, 0]), np.array([0.1, 0.2, 0.3]))


def test_roc_points_match_sklearn_and_are_thinned_with_both_ends():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    scores = rng.integers(0, 50, 500).astype(float)
    full = roc_points(labels, scores, max_points=10_000)
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(full["fpr"], fpr)
    np.testing.assert_allclose(full["tpr"], tpr)
    assert np.trapezoid(full["tpr"], full["fpr"]) == pytest.approx(auc(labels, scores))
    thin = roc_points(labels, scores, max_points=10)
    assert len(thin["fpr"]) <= 10
    assert (thin["fpr"][0], thin["tpr"][0]) == (0.0, 0.0)
    assert (thin["fpr"][-1], thin["tpr"][-1]) == (1.0, 1.0)


@pytest.mark.parametrize("seed", range(3))
def test_weighted_auc_equals_the_auc_of_rows_repeated_by_their_weight(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 60)
    scores = rng.integers(0, 6, 60).astype(float)  # heavy ties
    weights = rng.integers(0, 4, size=(5, 60))
    order, runs = score_runs(scores)
    ours = weighted_auc(labels[order], runs, weights[:, order])
    for row, value in zip(weights, ours):
        assert value == pytest.approx(auc(np.repeat(labels, row), np.repeat(scores, row)))
    assert weighted_auc(labels[order], runs, np.ones((1, 60)))[0] == pytest.approx(auc(labels, scores))


def test_weighted_auc_without_one_class_is_nan():
    labels = np.array([0, 1, 0, 1])
    order, runs = score_runs(np.array([0.1, 0.2, 0.3, 0.4]))
    value = weighted_auc(labels[order], runs, np.array([[1, 0, 2, 0]])[:, order])
    assert np.isnan(value[0])
