"""Hyperparameters of CF training and of each CF model (params.yaml section `cf`), with their bounds:
a size of 0 would write an untrained or empty model that every LLM stage then reads."""
from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from pipeline.params import Strict


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
    """params.yaml `cf`: the cf stage reads train and one model's section; cf_select reads `model` and
    `chance_auc` (the other stages read its choice, data/cf_selected/: pipeline/cf/selection.py)."""

    model: str  # auto (the best AUC on evaluate.selection_subset) or one of the registry's CF models
    chance_auc: float = Field(ge=0, le=1)  # a chosen model below this AUC is at chance: a warning
    train: TrainConfig
    mf: MFConfig
    lightgcn: LightGCNConfig
    sasrec: SASRecConfig

    @field_validator("model")
    @classmethod
    def _model_is_trained(cls, model: str) -> str:
        from pipeline import registry  # the CF models dvc.yaml trains (one cf@<model> stage each)

        trained = [entry.name for entry in registry.models("cf")]
        if model != "auto" and model not in trained:
            raise ValueError(f"'{model}' is neither auto nor one of the CF models the pipeline trains {trained} "
                             "(pipeline/registry.py)")
        return model
