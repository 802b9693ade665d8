"""Pointwise BCE training with Adam and early stopping on validation AUC, seeded."""
from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from pipeline.cf.config import TrainConfig
from pipeline.cf.data import Batch, batch_size_of, iterate_batches
from pipeline.metrics.classification import auc

SCORE_BATCH = 8192  # rows per forward pass when scoring (no gradients, so larger than training)


@dataclass
class TrainLog:
    epochs: list[dict] = field(default_factory=list)  # {"epoch", "loss", "valid_auc"} per epoch
    best_epoch: int = 0
    best_valid_auc: float = float("-inf")
    seconds: float = 0.0

    def as_dict(self) -> dict:
        """What train_log.json keeps: no `seconds`, so identical runs write identical bytes."""
        return {"epochs": self.epochs, "best_epoch": self.best_epoch, "best_valid_auc": self.best_valid_auc}


def seed_everything(seed: int, threads: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    # CPU kernels give bit-identical results for a fixed thread count (tests/test_cf.py checks it).
    torch.set_num_threads(threads)


@torch.no_grad()
def score_batches(model: nn.Module, batch: Batch) -> np.ndarray:
    """Logits (N,) of `model.predict` over a big batch, in row order, in eval mode."""
    model.eval()
    parts = [model.predict(part) for part in iterate_batches(batch, SCORE_BATCH)]
    return torch.cat(parts).numpy() if parts else np.zeros(0, dtype=np.float32)


def train_one_epoch(model: nn.Module, optimizer, train: Batch, size: int, rng: np.random.Generator) -> float:
    """Mean training loss of one shuffled pass over `train`."""
    model.train()
    total, rows = 0.0, 0
    for batch in iterate_batches(train, size, rng):
        loss = model.calculate_loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * batch_size_of(batch)
        rows += batch_size_of(batch)
    return total / max(rows, 1)


def fit(model: nn.Module, train: Batch, batch_size: int, score_valid: Callable[[], np.ndarray],
        valid_labels: np.ndarray, config: TrainConfig, lr: float, weight_decay: float, desc: str) -> TrainLog:
    """Train `model` in place; on return it holds the weights of the best validation-AUC epoch.

    `train` holds the model's training examples (rows, or SASRec windows), `batch_size` of them per
    step; `score_valid()` returns the current model's scores aligned with `valid_labels`."""
    if valid_labels.size == 0 or valid_labels.min() == valid_labels.max():
        raise ValueError(f"{desc}: validation rows need both labels for early stopping on AUC")
    rng = np.random.default_rng(config.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    log, best_state, start = TrainLog(), copy.deepcopy(model.state_dict()), time.perf_counter()
    progress = tqdm(range(1, config.max_epochs + 1), desc=desc, unit="epoch")
    for epoch in progress:
        loss = train_one_epoch(model, optimizer, train, batch_size, rng)
        valid_auc = auc(valid_labels, score_valid())
        log.epochs.append({"epoch": epoch, "loss": round(loss, 6), "valid_auc": round(valid_auc, 6)})
        progress.set_postfix(loss=f"{loss:.4f}", valid_auc=f"{valid_auc:.4f}")
        if valid_auc > log.best_valid_auc:
            log.best_epoch, log.best_valid_auc = epoch, valid_auc
            best_state = copy.deepcopy(model.state_dict())
        elif epoch - log.best_epoch >= config.patience:
            break
    model.load_state_dict(best_state)
    log.seconds = time.perf_counter() - start
    return log
