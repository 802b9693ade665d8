"""The best CF model every model is compared with, chosen on validation rows (the other
comparisons are the registry's: pipeline/registry.py, compared_with)."""
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
