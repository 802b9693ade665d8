"""A trained CF model's outputs: user/item vectors, scores of every interaction row and of the
top-N candidates, as frames in the declared schemas (USER_VECTORS, ITEM_VECTORS, PREDICTIONS)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from pipeline.cf.data import Batch, iterate_batches
from pipeline.cf.train import SCORE_BATCH


@torch.no_grad()
def user_item_vectors(model: nn.Module, user_histories: Batch) -> tuple[np.ndarray, np.ndarray]:
    """(n_users, d) and (n_items, d) float32; <user, item> is the model's score (logit)."""
    model.eval()
    parts = [model.user_vectors(part) for part in iterate_batches(user_histories, SCORE_BATCH)]
    users = torch.cat(parts).numpy().astype(np.float32)
    return users, model.item_vectors().numpy().astype(np.float32)


def vector_frames(users: np.ndarray, items: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """USER_VECTORS and ITEM_VECTORS frames, ids 0..n-1."""
    user_frame = pd.DataFrame({"user": np.arange(len(users), dtype=np.int32), "vector": list(users)})
    item_frame = pd.DataFrame({"item": np.arange(len(items), dtype=np.int32), "vector": list(items)})
    return user_frame, item_frame


def prediction_frame(row_scores: pd.DataFrame, interactions: pd.DataFrame, candidates: pd.DataFrame,
                     candidate_users: np.ndarray, items: np.ndarray) -> pd.DataFrame:
    """PREDICTIONS: every scored interaction row, then every top-N candidate with row = -1.

    `candidate_users` (n_users, d) are the user vectors to score candidates with (for SASRec the
    encoding of the history before the user's held-out positive)."""
    pointwise = row_scores.merge(interactions[["row", "user", "item"]], on="row", how="left")
    users = candidates["user"].to_numpy(np.int64)
    candidate_items = candidates["item"].to_numpy(np.int64)
    topn = pd.DataFrame({
        "row": np.full(len(candidates), -1, dtype=np.int64),
        "user": users.astype(np.int32),
        "item": candidate_items.astype(np.int32),
        "score": (candidate_users[users] * items[candidate_items]).sum(1).astype(np.float32),
    })
    return pd.concat([pointwise[["row", "user", "item", "score"]], topn], ignore_index=True)
