"""Which models each model is compared with: the best CF model (chosen on validation rows) and
the models it ablates."""
from __future__ import annotations

import numpy as np

from pipeline.metrics.classification import auc


def best_by_auc(candidates: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[str, float]:
    """(name, AUC) of the candidate (name -> (labels, scores)) with the highest AUC; on equal AUC
    the first in `candidates` order. Give it validation rows only: the choice must not see test rows."""
    if not candidates:
        raise ValueError("no candidate models to choose from")
    values = {name: auc(labels, scores) for name, (labels, scores) in candidates.items()}
    best = max(values, key=lambda name: -np.inf if np.isnan(values[name]) else values[name])
    return best, values[best]


def comparison_pairs(models: list[str], ablations: dict[str, list[str]]) -> dict[str, list[str]]:
    """model -> references it ablates, for the evaluated models only; a reference that is not
    evaluated is an error (its predictions would not be read)."""
    pairs = {}
    for model, references in ablations.items():
        if model not in models:
            continue
        missing = [reference for reference in references if reference not in models]
        if missing:
            raise ValueError(f"evaluate.ablations: {model} is compared with {missing}, not in evaluate.models")
        pairs[model] = list(references)
    return pairs
