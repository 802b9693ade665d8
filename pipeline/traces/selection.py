"""Which rows get a trace: hard training rows (the mistakes of the CF model, or of any model whose
scores of the train rows a predictions file holds), random ones, or a count per label; and the fixed
test sample whose traces are the gold explanations, what the students' explanations are scored
against."""
from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from pipeline.errors import BadInput

Mode = Literal["hard", "random", "per_label"]


def score_threshold(scores: pd.Series, threshold: float | None) -> float:
    """The decision threshold for CF scores: `threshold` if given, else 0.5 when every score lies
    in [0, 1] (probabilities), else 0.0 (logits: the sign)."""
    if threshold is not None:
        return float(threshold)
    return 0.5 if scores.between(0.0, 1.0).all() else 0.0


def misclassified_rows(
    rows: pd.DataFrame, predictions: pd.DataFrame, threshold: float, where: str, complete: bool = False
) -> pd.DataFrame:
    """The rows of `rows` (row, user, item, label, ...) whose score falls on the wrong side of
    `threshold`. Rows without a score (a sequential model may leave a user's first rows unscored)
    are skipped; with `complete`, `predictions` must score every row (complete_scores)."""
    if complete:
        scored = complete_scores(rows, predictions, where)
    else:
        scored = rows.merge(predictions[["row", "score"]], on="row", how="inner")
    if len(rows) and scored.empty:
        raise BadInput(f"{where}: no score for any of the {len(rows)} candidate training rows "
                       f"(first: row {int(rows['row'].iloc[0])}); hard selection needs CF scores of train rows")
    predicted = (scored["score"] > threshold).astype(int)
    return scored[predicted != scored["label"].astype(int)].drop(columns="score")


def complete_scores(rows: pd.DataFrame, predictions: pd.DataFrame, where: str) -> pd.DataFrame:
    """`rows` with their `score` from `predictions`, which must score each of them exactly once and
    as the same user and item (a file scored on another ingest fails); its other rows (valid, test,
    top-N candidates) are ignored. Else a one-line BadInput naming `where`."""
    mine = predictions[predictions["row"].isin(rows["row"])]
    if mine["row"].duplicated().any():
        row = int(mine.loc[mine["row"].duplicated(), "row"].iloc[0])
        raise BadInput(f"{where}: row {row} is scored more than once")
    unscored = rows[~rows["row"].isin(mine["row"])]
    if len(unscored):
        raise BadInput(f"{where}: scores {len(rows) - len(unscored)} of the {len(rows)} candidate training rows "
                       f"(first unscored: row {int(unscored['row'].iloc[0])}); hard selection from this file "
                       "needs a score for each")
    scored = rows.merge(mine[["row", "user", "item", "score"]], on="row", suffixes=("", "_scored"))
    other = scored[(scored["user"] != scored["user_scored"]) | (scored["item"] != scored["item_scored"])]
    if len(other):
        r = other.iloc[0]
        raise BadInput(f"{where}: row {int(r['row'])} is user {int(r['user_scored'])}, item {int(r['item_scored'])}; "
                       f"interactions.parquet has user {int(r['user'])}, item {int(r['item'])} (scored on another ingest?)")
    return scored.drop(columns=["user_scored", "item_scored"])


def sample_rows(frame: pd.DataFrame, count: int, rng: np.random.Generator) -> pd.DataFrame:
    """`count` rows of `frame` drawn without replacement (all of them when it has fewer)."""
    frame = frame.sort_values("row")
    if len(frame) <= count:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), size=count, replace=False))]


def select_trace_rows(
    train: pd.DataFrame,
    mode: Mode,
    count: int,
    seed: int,
    min_history: int = 1,
    predictions: pd.DataFrame | None = None,
    threshold: float | None = None,
    predictions_path: str = "predictions",
    complete: bool = False,
) -> pd.DataFrame:
    """Training rows to trace, sorted by row. `count` is the total for hard/random, per label for
    per_label. Rows with fewer than `min_history` earlier interactions are never chosen. With
    `complete`, hard selection needs `predictions` to score every row it may choose (a file scoring
    the train split); without, rows it leaves unscored are skipped (CF predictions)."""
    rng = np.random.default_rng(seed)
    pool = train[train["history_items"].map(len) >= min_history]
    if mode == "hard":
        if predictions is None:
            raise ValueError("traces.selection = hard needs the CF model's predictions")
        cut = score_threshold(predictions["score"], threshold)
        return sample_rows(misclassified_rows(pool, predictions, cut, predictions_path, complete), count, rng)
    if mode == "random":
        return sample_rows(pool, count, rng)
    if mode == "per_label":
        parts = [sample_rows(pool[pool["label"] == label], count, rng) for label in (1, 0)]
        return pd.concat(parts).sort_values("row")
    raise ValueError(f"unknown trace selection mode '{mode}' (hard | random | per_label)")


def select_gold_rows(test_tiny: pd.DataFrame, count: int, history: int, seed: int) -> pd.DataFrame:
    """The fixed gold sample: test_tiny rows with at least `history` earlier interactions (the
    prompt shows exactly the last `history`), half liked where possible, sorted by row."""
    rng = np.random.default_rng(seed)
    pool = test_tiny[test_tiny["history_items"].map(len) >= history]
    liked = sample_rows(pool[pool["label"] == 1], count // 2, rng)
    disliked = sample_rows(pool[pool["label"] == 0], count - len(liked), rng)
    if len(liked) + len(disliked) < count:  # too few disliked rows: top up with liked ones
        rest = pool[(pool["label"] == 1) & ~pool["row"].isin(liked["row"])]
        liked = pd.concat([liked, sample_rows(rest, count - len(liked) - len(disliked), rng)])
    return pd.concat([liked, disliked]).sort_values("row")
