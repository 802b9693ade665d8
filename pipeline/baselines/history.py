"""History-only baseline: a row's score is the share of liked items in the history its LLM prompt
shows (the last `last` items of the row's history), the target item's train popularity breaking
ties. It asks how much the LLM recommenders add to what the prompt's Liked/Not liked marks say.
It scores interaction rows only: within one user's top-N candidates (one history) its order would
be the popularity baseline's (pipeline/baselines/popularity.py).

score = rate + scale * popularity / (max popularity + 1), where `scale` is half the smallest gap
between two different rates a row can have, so popularity orders rows of equal rate only. (A
fallback rate within ~1e-6 of some k/m makes the scale too small for float32 predictions: the
popularity tie-break is then lost, rates still never swap.)
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.baselines.popularity import train_popularity


def recent_liked_rate(history_labels: Sequence[np.ndarray], last: int) -> np.ndarray:
    """Mean of the last `last` labels of each row's history (N,); NaN for an empty history."""
    lengths = np.fromiter((len(labels) for labels in history_labels), dtype=np.int64, count=len(history_labels))
    flat = np.concatenate([np.asarray(labels, dtype=np.int64) for labels in history_labels] + [np.zeros(0, np.int64)])
    ends = np.cumsum(lengths)
    firsts = np.maximum(ends - lengths, ends - last)
    liked_before = np.r_[0, np.cumsum(flat)]  # liked_before[i] = liked labels among flat[:i]
    shown = ends - firsts
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(shown > 0, (liked_before[ends] - liked_before[firsts]) / shown, np.nan)


def tie_break_scale(last: int, fallback: float) -> float:
    """Half the smallest gap between two different rates: k/m for 0 <= k <= m <= last, and the
    fallback rate of rows without history."""
    rates = np.unique([k / m for m in range(1, last + 1) for k in range(m + 1)] + [fallback])
    return float(np.diff(rates).min() / 2) if rates.size > 1 else 1.0


def history_scores(
    history_labels: Sequence[np.ndarray], items: np.ndarray, popularity: np.ndarray, last: int, fallback: float
) -> np.ndarray:
    """Scores (N,) of rows with these histories and target `items`; `popularity` (n_items,) counts
    each item's train interactions; rows without history get the `fallback` rate."""
    rate = recent_liked_rate(history_labels, last)
    rate = np.where(np.isnan(rate), fallback, rate)
    bonus = popularity[np.asarray(items)] / (popularity.max(initial=0) + 1)  # in [0, 1)
    return rate + tie_break_scale(last, fallback) * bonus


def history_predictions(interactions: pd.DataFrame, last: int) -> pd.DataFrame:
    """Predictions (row, user, item, score) of every interaction row."""
    popularity = train_popularity(interactions, int(interactions["item"].max()) + 1)
    fallback = float(interactions.loc[interactions["split"] == "train", "label"].mean())
    return interactions[["row", "user", "item"]].assign(
        score=history_scores(interactions["history_labels"].tolist(), interactions["item"].to_numpy(),
                             popularity, last, fallback))
