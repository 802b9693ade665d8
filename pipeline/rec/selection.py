"""Model selection on valid_small: AUC, UAUC and the paper's weighted AUC/4 + UAUC/3, computed by the
same functions as the reported metrics (pipeline.metrics.classification)."""
from __future__ import annotations

import numpy as np

from pipeline.metrics.classification import auc, uauc

RULES = ("weighted", "auc", "uauc")


def selection_metrics(users: np.ndarray, labels: np.ndarray, scores: np.ndarray, rule: str) -> dict[str, float]:
    """{"auc", "uauc", "selection"}; higher selection = better checkpoint (nan when undefined)."""
    if rule not in RULES:
        raise ValueError(f"selection rule must be one of {RULES}, got {rule!r}")
    row_auc = auc(labels, scores)
    user_auc, _ = uauc(np.asarray(users), np.asarray(labels), np.asarray(scores))
    value = {"weighted": row_auc / 4 + user_auc / 3, "auc": row_auc, "uauc": user_auc}[rule]
    return {"auc": row_auc, "uauc": user_auc, "selection": float(value)}
