"""The CF user vector as of the end of a user's data.

A sequential CF model (SASRec) encodes a history into the user's state; the cf stage exports the
state after the last train row (user_vectors.parquet) and before each row (row_user_vectors), but
a recommendation comes after the user's last row of any split. This re-encodes that history with
the saved checkpoint. Other models' user vectors do not depend on the history."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from pipeline.artifacts import expect_content, load_torch
from pipeline.cf.export import user_item_vectors
from pipeline.cf.data import rows_to_tensors
from pipeline.cf.models import MODEL_CONFIGS, SEQUENTIAL, build_model, history_length_of

HistoryEncoder = Callable[[int, list[int], list[int]], np.ndarray]


def load_history_encoder(checkpoint: Path) -> HistoryEncoder | None:
    """encode(user, items, labels) -> (d,) state of a sequential CF checkpoint (the cf stage's
    model.pt), or None when the model is not sequential or there is no checkpoint."""
    if not Path(checkpoint).exists():
        return None
    saved = load_torch(checkpoint)
    with expect_content(checkpoint, "a CF checkpoint of the cf stage"):
        if saved["model"] not in SEQUENTIAL:
            return None
        config = MODEL_CONFIGS[saved["model"]](**saved["config"])
        model = build_model(saved["model"], config, None, saved["n_users"], saved["n_items"])  # sequential: no graph
        model.load_state_dict(saved["state_dict"])

    def encode(user: int, items: list[int], labels: list[int]) -> np.ndarray:
        frame = pd.DataFrame({"user": [user], "item": [0], "label": [0], "history_items": [items],
                              "history_labels": [labels]})
        users, _ = user_item_vectors(model, rows_to_tensors(frame, history_length_of(config)))
        return users[0]

    return encode
