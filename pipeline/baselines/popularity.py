"""Popularity baseline: a row's or a top-N candidate's score is its item's count of train
interactions (liked or not), the same for every user. It asks what a ranking gets from item
popularity alone: sampled negatives are mostly rarely rated items, so this baseline is hard to beat
on sampled top-N.

Equal counts give equal scores; the top-N metrics count negatives tied with the positive as ranked
above it (pipeline/metrics/topn.py), so ties never help this baseline.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def train_popularity(interactions: pd.DataFrame, n_items: int) -> np.ndarray:
    """Train interactions per item (n_items,); raises when there are no train rows."""
    train = interactions[interactions["split"] == "train"]
    if train.empty:
        raise ValueError("interactions have no train rows: no popularity to score with")
    return np.bincount(train["item"], minlength=n_items)


def popularity_predictions(interactions: pd.DataFrame, candidates: pd.DataFrame) -> pd.DataFrame:
    """Predictions (row, user, item, score) of every interaction row and of every top-N candidate
    (row = -1): the item's train count."""
    n_items = int(np.concatenate([interactions["item"], candidates["item"]]).max()) + 1
    counts = train_popularity(interactions, n_items).astype(np.float64)
    pointwise = interactions[["row", "user", "item"]].assign(score=counts[interactions["item"].to_numpy()])
    topn = candidates[["user", "item"]].assign(row=-1, score=counts[candidates["item"].to_numpy()])
    return pd.concat([pointwise, topn[["row", "user", "item", "score"]]], ignore_index=True)
