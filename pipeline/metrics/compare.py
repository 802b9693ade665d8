"""The best CF model, chosen by AUC on validation rows: the model every model is compared with
(evaluate's vs_best_cf) and, with `cf.model: auto`, the one whose vectors feed the LLM stages
(stages/cf_select.py). The other comparisons are the registry's (pipeline/registry.py, compared_with)."""
from __future__ import annotations

from typing import Literal

import numpy as np

from pipeline import layout, registry
from pipeline.errors import BadInput, BadParams
from pipeline.metrics.classification import auc
from pipeline.metrics.scores import pointwise_scores
from pipeline.schemas import SPLITS, SUBSETS

RowSet = Literal[SPLITS + SUBSETS]  # a split's rows, or a subset's (data/ingest/subsets.parquet)


def evaluation_rows(subset: str, interactions, subsets) -> np.ndarray:
    """Row ids of a named subset, or of every row of a split when `subset` is a split name."""
    if subset in SPLITS:
        return interactions.loc[interactions["split"] == subset, "row"].to_numpy()
    rows = subsets.loc[subsets["subset"] == subset, "row"].to_numpy()
    if rows.size == 0:
        raise BadInput(f"{layout.SUBSETS}: subset '{subset}' is empty or unknown")
    return rows


def selection_rows(subset: str, interactions, subsets) -> np.ndarray:
    """The rows of `subset` (params evaluate.selection_subset) a CF model is chosen on: no test row."""
    rows = evaluation_rows(subset, interactions, subsets)
    if (interactions.loc[interactions["row"].isin(rows), "split"] == "test").any():
        raise BadParams(f"evaluate.selection_subset '{subset}' holds test rows: "
                        "the best CF model must be chosen without them")
    return rows


def cf_selection_aucs(subset: str, predictions: dict, interactions, subsets) -> dict[str, float]:
    """name -> AUC on `subset`'s rows of every evaluated CF model of the registry, in registry order
    (`predictions`: name -> its data/predictions frame)."""
    rows = selection_rows(subset, interactions, subsets)
    aucs = {}
    for name in [entry.name for entry in registry.models("cf") if entry.evaluated]:
        scores = pointwise_scores(predictions[name], interactions, rows, str(layout.predictions(name)))
        aucs[name] = auc(scores["label"].to_numpy(), scores["score"].to_numpy())
    return aucs


def best_by_auc(aucs: dict[str, float]) -> tuple[str, float]:
    """(name, AUC) of the highest AUC (name -> AUC); on equal AUC the first in `aucs` order, a NaN
    (one label only) last. Give it validation rows only: the choice must not see test rows."""
    if not aucs:
        raise ValueError("no candidate models to choose from")
    best = max(aucs, key=lambda name: -np.inf if np.isnan(aucs[name]) else aucs[name])
    return best, aucs[best]
