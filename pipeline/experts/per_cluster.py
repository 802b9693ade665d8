"""Who gains and who loses: AUC and UAUC of a model and its reference on the same rows, per user
cluster (users not clustered as their own group, "cold")."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.metrics.classification import auc, uauc

COLD = "cold"


def per_cluster(rows: pd.DataFrame, user_clusters: pd.DataFrame) -> dict[str, dict]:
    """rows: user, label, score, reference (the reference model's score on the same row).
    Returns group -> {users, rows, auc, uauc, reference_auc, reference_uauc, auc_gain, uauc_gain}."""
    cluster_of = dict(zip(user_clusters["user"].astype(int), user_clusters["cluster"].astype(int)))
    groups = rows["user"].map(lambda u: str(cluster_of[u]) if u in cluster_of else COLD)
    out = {}
    for group in sorted(groups.unique(), key=lambda g: (g == COLD, g)):
        part = rows[groups == group]
        users, labels = part["user"].to_numpy(), part["label"].to_numpy()
        model = {"auc": auc(labels, part["score"].to_numpy()), "uauc": uauc(users, labels, part["score"].to_numpy())[0]}
        reference = {"auc": auc(labels, part["reference"].to_numpy()),
                     "uauc": uauc(users, labels, part["reference"].to_numpy())[0]}
        out[group] = {
            "users": int(part["user"].nunique()), "rows": int(len(part)), **model,
            "reference_auc": reference["auc"], "reference_uauc": reference["uauc"],
            "auc_gain": _gain(model["auc"], reference["auc"]), "uauc_gain": _gain(model["uauc"], reference["uauc"]),
        }
    return out


def _gain(value: float, reference: float) -> float | None:
    return None if np.isnan(value) or np.isnan(reference) else float(value - reference)
