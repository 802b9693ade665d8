"""A model's scores of the evaluation rows and top-N candidates, joined from its predictions table.

Every model is measured on the same rows (an evaluation subset), so a model whose predictions
miss some of those rows is an error, never a silently smaller test set.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.schemas import require_finite


def pointwise_scores(
    predictions: pd.DataFrame, interactions: pd.DataFrame, rows: np.ndarray, where: str
) -> pd.DataFrame:
    """The (row, user, label, score) of `rows`, erroring on rows `predictions` lacks or mislabels,
    and on a NaN or infinite score (a NaN would pass for a missing row)."""
    require_finite(predictions, "score", where, ["row", "user", "item"])
    scored = predictions[predictions["row"] >= 0]
    duplicated = scored["row"][scored["row"].duplicated()]
    if len(duplicated):
        raise ValueError(f"{where}: row {int(duplicated.iloc[0])} is scored more than once")
    wanted = interactions.loc[interactions["row"].isin(rows), ["row", "user", "item", "label"]]
    if len(wanted) != len(np.unique(rows)):
        raise ValueError(f"{where}: evaluation rows are missing from the interactions table")
    joined = wanted.merge(scored, on="row", how="left", suffixes=("", "_pred"))
    missing = joined["score"].isna()
    if missing.any():
        examples = joined.loc[missing, "row"].head(5).tolist()
        raise ValueError(
            f"{where}: no score for {int(missing.sum())} of {len(joined)} evaluation rows "
            f"(e.g. rows {examples}); the model must score every row of the subset"
        )
    mismatch = (joined["user"] != joined["user_pred"]) | (joined["item"] != joined["item_pred"])
    if mismatch.any():
        row = int(joined.loc[mismatch, "row"].iloc[0])
        raise ValueError(f"{where}: row {row} has a user/item that differs from interactions")
    return joined[["row", "user", "label", "score"]].sort_values("row", ignore_index=True)


def topn_scores(predictions: pd.DataFrame, candidates: pd.DataFrame, where: str) -> pd.DataFrame | None:
    """Candidates with the model's scores; None when the model scored no top-N candidates."""
    require_finite(predictions, "score", where, ["row", "user", "item"])
    scored = predictions.loc[predictions["row"] == -1, ["user", "item", "score"]]
    if scored.empty:
        return None
    joined = candidates.merge(scored, on=["user", "item"], how="left")
    missing = joined["score"].isna()
    if missing.any():
        first = joined.loc[missing].iloc[0]
        raise ValueError(
            f"{where}: no score for {int(missing.sum())} top-N candidates "
            f"(e.g. user {int(first['user'])}, item {int(first['item'])})"
        )
    return joined
