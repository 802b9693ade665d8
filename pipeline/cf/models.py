"""Build a CF model by name, and the examples it trains on and scores rows with."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from pipeline.cf.data import Batch, iterate_batches, rows_to_tensors, user_windows
from pipeline.cf.lightgcn import LightGCN
from pipeline.cf.mf import MF
from pipeline.cf.sasrec import SASRec
from pipeline.cf.train import SCORE_BATCH, score_batches

# Each class declares its name, params model and kind; the registry lists which ones the pipeline
# trains (tests/test_cf.py checks the two agree).
CF_MODELS: dict[str, type[nn.Module]] = {cls.name: cls for cls in (MF, LightGCN, SASRec)}
MODEL_CONFIGS = {name: cls.config_class for name, cls in CF_MODELS.items()}
SEQUENTIAL = {name for name, cls in CF_MODELS.items() if cls.sequential}


def build_model(name: str, config, train: pd.DataFrame | None, n_users: int, n_items: int) -> nn.Module:
    """A freshly initialised model (seed torch before calling); `train` = the TRAIN rows."""
    if name not in CF_MODELS:
        raise ValueError(f"unknown CF model '{name}'; expected one of {sorted(CF_MODELS)}")
    return CF_MODELS[name].build(config, train, n_users, n_items)


def history_length_of(config) -> int:
    """How many history items a model reads (only SASRec reads any; 1 keeps tensors small)."""
    return getattr(config, "max_length", 1)


def training_examples(name: str, config, interactions: pd.DataFrame, batch_size: int) -> tuple[Batch, int]:
    """(examples, examples per step): TRAIN rows, or for SASRec windows of user sequences with
    about `batch_size` target rows per step."""
    if name in SEQUENTIAL:
        stride = max(config.max_length // 2, 1)  # rows owned by a full window, see user_windows
        return user_windows(interactions, config.max_length, ("train",)), max(batch_size // stride, 1)
    train = interactions[interactions["split"] == "train"]
    return rows_to_tensors(train, history_length_of(config)), batch_size


def score_rows(name: str, model: nn.Module, config, interactions: pd.DataFrame, splits: tuple[str, ...]) -> pd.DataFrame:
    """(row, score) of every interaction row in `splits`, sorted by row; score = logit."""
    rows = interactions[interactions["split"].isin(splits)].sort_values("row")
    if name not in SEQUENTIAL:
        scores = score_batches(model, rows_to_tensors(rows, history_length_of(config)))
        return pd.DataFrame({"row": rows["row"].to_numpy(np.int64), "score": scores})
    windows = user_windows(interactions, config.max_length, splits)
    model.eval()
    found_rows, found_scores = [], []
    with torch.no_grad():
        for batch in iterate_batches(windows, max(SCORE_BATCH // config.max_length, 1)):
            owned = batch["target_rows"] >= 0
            found_rows.append(batch["target_rows"][owned].numpy())
            found_scores.append(model.predict_windows(batch)[owned].numpy())
    scored = pd.DataFrame({"row": np.concatenate(found_rows or [np.zeros(0, np.int64)]),
                           "score": np.concatenate(found_scores or [np.zeros(0, np.float32)])})
    return scored.sort_values("row", ignore_index=True)
