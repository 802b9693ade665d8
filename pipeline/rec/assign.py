"""Routing rows to experts: each encoded row gets its expert weights from the gate and the user's
CF state before that row (the vector its prompt's user slot shows)."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from pipeline.rec.examples import CFVectors, RecExample
from pipeline.rec.gate import Gate


def row_user_vectors(examples: Sequence[RecExample], vectors: CFVectors) -> np.ndarray:
    """(m, d) raw CF user vector of each row (a sequential model's state before `state_row`)."""
    return np.stack([vectors.user_state(e.user, e.state_row) for e in examples]).astype(np.float32)


def assign_weights(
    examples: Sequence[RecExample], gate: Gate, vectors: CFVectors, warm_users: set[int]
) -> np.ndarray:
    """Set each example's `expert_weights` from `gate`; returns them (m, E)."""
    if not examples:
        return np.zeros((0, gate.experts), dtype=np.float32)
    warm = np.array([e.user in warm_users for e in examples])
    weights = gate.weights(row_user_vectors(examples, vectors), warm)
    for example, row in zip(examples, weights):
        example.expert_weights = row
    return weights


def global_only(examples: Sequence[RecExample]) -> np.ndarray:
    """(m,) True where a row's weights put everything on the global expert (the last one): the
    fused model then is the model without experts, whose scores can be reused."""
    return np.array([e.expert_weights is not None and e.expert_weights[-1] == 1.0 for e in examples], dtype=bool)


def scores_with_reuse(
    examples: Sequence[RecExample], reference: np.ndarray, score_fused: Callable[[list[RecExample]], np.ndarray]
) -> tuple[np.ndarray, int]:
    """Scores of `examples` (weights attached): rows routed to the global expert alone take
    `reference` (the single-adapter model's scores of the same rows, in order); the others are
    scored by `score_fused`. Returns (scores, rows scored by the fused model)."""
    reuse = global_only(examples)
    scores = np.asarray(reference, dtype=np.float32).copy()
    fused = [e for e, r in zip(examples, reuse) if not r]
    if fused:
        scores[~reuse] = score_fused(fused)
    return scores, len(fused)
