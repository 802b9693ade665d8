"""Hyperparameters of CF training and of each CF model (params.yaml section `cf`), with their bounds:
a size of 0 would write an untrained or empty model that every LLM stage then reads."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

CFName = Literal["mf", "lightgcn", "sasrec"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrainConfig(Strict):
    seed: int
    batch_size: int = Field(ge=1)
    max_epochs: int = Field(ge=1)
    patience: int = Field(ge=1)  # epochs without a better validation AUC before stopping
    threads: int = Field(ge=1)  # torch CPU threads (results are reproducible for a fixed count)


class MFConfig(Strict):
    dim: int = Field(ge=1)
    lr: float = Field(gt=0)
    weight_decay: float = Field(ge=0)


class LightGCNConfig(Strict):
    dim: int = Field(ge=1)
    layers: int = Field(ge=0)  # 0 = the plain embeddings
    lr: float = Field(gt=0)
    weight_decay: float = Field(ge=0)


class SASRecConfig(Strict):
    hidden: int = Field(ge=1)
    blocks: int = Field(ge=1)
    heads: int = Field(ge=1)
    dropout: float = Field(ge=0, lt=1)
    max_length: int = Field(ge=2)  # includes the start token: a row sees max_length-1 earlier items
    lr: float = Field(gt=0)
    weight_decay: float = Field(ge=0)

    @field_validator("heads")
    @classmethod
    def _heads_divide_hidden(cls, heads: int, info: ValidationInfo) -> int:
        hidden = info.data.get("hidden")
        if hidden and hidden % heads:
            raise ValueError(f"{heads} heads do not divide hidden {hidden}")
        return heads


class CFParams(Strict):
    """params.yaml `cf`: the cf stage reads train and one model's section; later stages read `model`."""

    models: list[CFName] = Field(min_length=1)  # trained side by side by dvc.yaml's foreach
    model: CFName  # which model's vectors feed the LLM stages
    train: TrainConfig
    mf: MFConfig
    lightgcn: LightGCNConfig
    sasrec: SASRecConfig

    @field_validator("model")
    @classmethod
    def _model_is_trained(cls, model: str, info: ValidationInfo) -> str:
        models = info.data.get("models")
        if models is not None and model not in models:
            raise ValueError(f"'{model}' is not one of cf.models {models}: no stage trains it")
        return model
