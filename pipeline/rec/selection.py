"""Model selection on valid_small: AUC, UAUC and the paper's weighted AUC/4 + UAUC/3, computed by the
same functions as the reported metrics (pipeline.metrics.classification), and the training loop's
`validate` that scores fixed rows with them (a recommender stage's valid_small, an expert's
cluster's share of it)."""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from pipeline.metrics.classification import auc, uauc

RULES = ("weighted", "auc", "uauc")
# What a validation reports to the loop: the selection value, then the metrics whose new best also
# counts as progress for early stopping (ThinkRec's weighted rule watches AUC, UAUC and the mix:
# TR runner_base.py:457-479; CoLLM's AUC rule only AUC: CO runner_base.py:413-418).
WATCHED = {"weighted": ("selection", "auc", "uauc"), "auc": ("selection",), "uauc": ("selection",)}


def selection_metrics(users: np.ndarray, labels: np.ndarray, scores: np.ndarray, rule: str) -> dict[str, float]:
    """{"auc", "uauc", "selection"}; higher selection = better checkpoint (nan when undefined)."""
    if rule not in RULES:
        raise ValueError(f"selection rule must be one of {RULES}, got {rule!r}")
    row_auc = auc(labels, scores)
    user_auc, _ = uauc(np.asarray(users), np.asarray(labels), np.asarray(scores))
    value = {"weighted": row_auc / 4 + user_auc / 3, "auc": row_auc, "uauc": user_auc}[rule]
    return {"auc": row_auc, "uauc": user_auc, "selection": float(value)}


def selection_defined(users: np.ndarray, labels: np.ndarray, rule: str) -> bool:
    """Whether `rule` can rank checkpoints on these rows at all (AUC needs both labels, UAUC a user
    with both): undefined, every validation would read -inf and the last checkpoint would win."""
    perfect = np.asarray(labels, dtype=np.float64)
    return not math.isnan(selection_metrics(users, labels, perfect, rule)["selection"])


class Validation:
    """The training loop's `validate` on fixed rows (pipeline/rec/training.py: train_loop): each call
    scores them with the model as it stands (`score`), keeps their metrics and scores in `evals`,
    and returns (selection, *watched) of `rule`."""

    def __init__(self, score: Callable[[], np.ndarray], users: Sequence[int], labels: Sequence[int], rule: str):
        self.score, self.users, self.labels, self.rule = score, np.asarray(users), np.asarray(labels), rule
        self.evals: list[dict] = []  # per call: auc, uauc, selection, scores

    def __call__(self) -> tuple[float, ...]:
        scores = self.score()
        self.evals.append({**selection_metrics(self.users, self.labels, scores, self.rule), "scores": scores})
        return tuple(self.evals[-1][key] for key in WATCHED[self.rule])
