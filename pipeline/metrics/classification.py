"""Pointwise classification metrics: AUC over rows, UAUC over users, ROC curve points.

AUC is the Mann-Whitney statistic: the probability that a random positive scores above a random
negative, a tie counting one half (the same value as sklearn's roc_auc_score).
"""
from __future__ import annotations

import numpy as np


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """AUC of `scores` (N,) against binary `labels` (N,); NaN when only one class is present."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(scores)  # 1-based, ties share their mean rank
    rank_sum = ranks[labels].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def uauc(users: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> tuple[float, int]:
    """Unweighted mean of per-user AUC over users with both classes; returns (uauc, n_users_used)."""
    per_user = [auc(labels[idx], scores[idx]) for idx in group_indices(users)]
    valid = [value for value in per_user if not np.isnan(value)]
    if not valid:
        return float("nan"), 0
    return float(np.mean(valid)), len(valid)


def roc_points(labels: np.ndarray, scores: np.ndarray, max_points: int) -> dict[str, list[float]]:
    """ROC curve (fpr, tpr) with one point per distinct score, thinned to `max_points`.

    Thinning keeps the first (0, 0) and last (1, 1) points and evenly spaced ones between.
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_labels = scores[order], labels[order]
    # Last index of each run of equal scores: the curve only moves between distinct thresholds.
    cuts = np.r_[np.flatnonzero(np.diff(sorted_scores)), sorted_scores.size - 1]
    tps = np.cumsum(sorted_labels)[cuts]
    fps = (cuts + 1) - tps
    n_pos, n_neg = max(int(labels.sum()), 1), max(int((~labels).sum()), 1)
    fpr = np.r_[0.0, fps / n_neg]
    tpr = np.r_[0.0, tps / n_pos]
    if fpr.size > max_points:
        keep = np.unique(np.linspace(0, fpr.size - 1, max_points).round().astype(int))
        fpr, tpr = fpr[keep], tpr[keep]
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist()}


def score_runs(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows in ascending score order (N,) and the start of each run of equal scores (G,)."""
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(scores, kind="stable")
    return order, np.r_[0, np.flatnonzero(np.diff(scores[order])) + 1]


def weighted_auc(labels: np.ndarray, runs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUC under row weights, one value per weight vector: (B, N) weights -> (B,).

    `labels` (N,) and the columns of `weights` are in ascending score order, `runs` starts the runs
    of equal scores (score_runs). Integer weights w give the AUC of the data with each row
    repeated w times: the Mann-Whitney sum over positives of the negative weight scored below
    plus half the negative weight tied with them. NaN where a weight vector leaves one class.
    """
    labels = np.asarray(labels).astype(bool)
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    negatives = np.add.reduceat(weights * ~labels, runs, axis=1)  # (B, G)
    positives = np.add.reduceat(weights * labels, runs, axis=1)  # (B, G)
    below = np.cumsum(negatives, axis=1) - negatives
    wins = (positives * (below + 0.5 * negatives)).sum(axis=1)
    pairs = positives.sum(axis=1) * negatives.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, wins / pairs, np.nan)


def group_indices(users: np.ndarray) -> list[np.ndarray]:
    """Row indices of each user, users in ascending id order, rows in their input order."""
    users = np.asarray(users)
    order = np.argsort(users, kind="stable")
    bounds = np.flatnonzero(np.diff(users[order])) + 1
    return np.split(order, bounds) if users.size else []


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_values)) + 1]
    ends = np.r_[starts[1:], values.size]
    mean_rank = (starts + ends + 1) / 2.0  # mean of 1-based ranks start+1..end
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks
