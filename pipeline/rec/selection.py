"""Model selection on valid_small: AUC, UAUC and the reference's AUC/4 + UAUC/3."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

RULES = ("reference", "auc", "uauc")


def auc_uauc(users: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """AUC over all rows; UAUC = mean AUC of users that have both labels (nan if none)."""
    auc = float(roc_auc_score(labels, scores)) if len(set(labels.tolist())) == 2 else float("nan")
    per_user = []
    frame = pd.DataFrame({"user": users, "label": labels, "score": scores})
    for _, group in frame.groupby("user"):
        if group["label"].nunique() == 2:
            per_user.append(roc_auc_score(group["label"], group["score"]))
    return auc, float(np.mean(per_user)) if per_user else float("nan")


def selection_metrics(users: np.ndarray, labels: np.ndarray, scores: np.ndarray, rule: str) -> dict[str, float]:
    """{"auc", "uauc", "selection"}; higher selection = better checkpoint."""
    if rule not in RULES:
        raise ValueError(f"selection rule must be one of {RULES}, got {rule!r}")
    auc, uauc = auc_uauc(users, labels, scores)
    value = {"reference": auc / 4 + uauc / 3, "auc": auc, "uauc": uauc}[rule]
    return {"auc": auc, "uauc": uauc, "selection": float(value)}
