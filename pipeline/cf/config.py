"""Hyperparameters of CF training and of each CF model (params.yaml section `cf`)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrainConfig(Strict):
    seed: int
    batch_size: int
    max_epochs: int
    patience: int  # epochs without a better validation AUC before stopping
    threads: int  # torch CPU threads (results are reproducible for a fixed count)


class MFConfig(Strict):
    dim: int
    lr: float
    weight_decay: float


class LightGCNConfig(Strict):
    dim: int
    layers: int
    lr: float
    weight_decay: float


class SASRecConfig(Strict):
    hidden: int
    blocks: int
    heads: int
    dropout: float
    max_length: int
    lr: float
    weight_decay: float
