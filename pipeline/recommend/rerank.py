"""Re-rank CF candidates with a trained LLM recommender (pipeline/rec/recommender.py).

Prompts come from the recommender's own encoder, so keywords and CF slots are exactly as in
training; every candidate shows the same history (the user's latest), so score_candidates runs
that shared prefix once and each candidate costs its target tokens."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.rec.examples import RecExample
from pipeline.rec.recommender import Recommender


def candidate_frame(user: int, items: np.ndarray, history: tuple[list[int], list[int]]) -> pd.DataFrame:
    """build_examples input: each candidate as the target after `history` (row -1: not an
    interaction; state_row -1: the user's CF vector, not a per-row state)."""
    history_items, history_labels = history
    return pd.DataFrame({
        "row": -1, "user": user, "item": np.asarray(items, dtype=np.int64), "label": 0,
        "history_items": [list(history_items)] * len(items), "history_labels": [list(history_labels)] * len(items),
        "state_row": -1,
    })


def rerank(recommender: Recommender, frame: pd.DataFrame, batch_size: int, dtype: str
           ) -> tuple[np.ndarray, list[RecExample]]:
    """(answer scores of `frame`'s candidates in order, their encoded examples; with experts each
    routed by the gate from the user's CF state)."""
    examples = recommender.encode(frame)
    return recommender.score_candidates(examples, batch_size, dtype, "re-rank"), examples
