"""The fused row: a re-ranker's score and its retriever's score combined per row.

Each score is standardized by its mean and standard deviation on the selection rows (valid_small),
then fused = weight * llm + (1 - weight) * retriever, the weight the one of a fixed grid with the
best AUC on those rows (the first of equals: the smallest weight). The same standardization and
weight score the evaluation rows and the retrieved candidates, so the fused list is ordered by the
ranking path's own rule (pipeline/ranking/order.py: ties by retriever rank).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.metrics.classification import auc

WEIGHTS = tuple(round(w, 2) for w in np.linspace(0.0, 1.0, 11))  # 0 = the retriever alone, 1 = the LLM alone


@dataclass(frozen=True)
class Fusion:
    weight: float  # on the LLM's standardized score; 1 - weight on the retriever's
    llm: tuple[float, float]  # mean, std of the LLM's scores on the selection rows
    retriever: tuple[float, float]  # mean, std of the retriever's
    selection_auc: dict[str, float]  # each weight of the grid -> its AUC on the selection rows

    def score(self, llm: np.ndarray, retriever: np.ndarray) -> np.ndarray:
        return (self.weight * _standard(llm, self.llm)
                + (1.0 - self.weight) * _standard(retriever, self.retriever)).astype(np.float32)


def _standard(scores: np.ndarray, moments: tuple[float, float]) -> np.ndarray:
    return (np.asarray(scores, dtype=np.float64) - moments[0]) / moments[1]


def _moments(scores: np.ndarray) -> tuple[float, float]:
    scores = np.asarray(scores, dtype=np.float64)
    std = float(scores.std())
    return float(scores.mean()), std if std > 0 else 1.0  # a constant score stays constant


def choose_fusion(labels: np.ndarray, llm: np.ndarray, retriever: np.ndarray,
                  weights: tuple[float, ...] = WEIGHTS) -> Fusion:
    """The weight of `weights` with the best AUC of the fused score on the selection rows."""
    if len(labels) == 0 or len(set(np.asarray(labels).tolist())) < 2:
        raise ValueError("choosing the fusion weight needs selection rows of both labels")
    moments = _moments(llm), _moments(retriever)
    aucs = {}
    for weight in weights:
        aucs[f"{weight:.2f}"] = auc(np.asarray(labels).astype(bool),
                                    Fusion(weight, *moments, {}).score(llm, retriever).astype(np.float64))
    best = max(aucs, key=lambda key: (aucs[key], -float(key)))
    return Fusion(float(best), *moments, aucs)
