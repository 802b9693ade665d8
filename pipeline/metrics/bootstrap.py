"""User-level bootstrap: resample the evaluated users with replacement, B times.

A resample is a vector of how often each user was drawn, users in ascending id order, drawn from
the seed alone: every model evaluated on the same users gets the same resamples, so the
difference of two models on each resample gives a paired interval. Every metric of a resample
comes from per_user.weighted_metrics with these counts as the users' weights.
"""
from __future__ import annotations

import numpy as np

LEVEL = 0.95  # two-sided percentile interval: the 2.5th and 97.5th percentiles of the resamples


def resample_counts(n_users: int, resamples: int, seed: int, stream: int = 0) -> np.ndarray:
    """(resamples, n_users) int64: draws of each user in each resample of n_users draws.

    `stream` separates independent resamplings of different user sets under one seed (pointwise
    users 0, top-N users 1).
    """
    rng = np.random.default_rng([seed, stream])
    draws = rng.integers(0, n_users, size=(resamples, n_users))  # (B, U)
    flat = draws + n_users * np.arange(resamples)[:, None]
    return np.bincount(flat.ravel(), minlength=resamples * n_users).reshape(resamples, n_users)


def percentile_interval(values: np.ndarray) -> tuple[float, float] | tuple[None, None]:
    """(low, high) of the resampled `values` (B,); resamples where the metric is undefined (NaN:
    no drawn user counts for it) are left out; (None, None) when all are."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return None, None
    tail = 100 * (1 - LEVEL) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
