"""params.yaml's `experts` and `gate` sections as pydantic models (params.yaml holds every default;
these only validate). Torch-free, so a stage that only reads them starts fast."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from pipeline.params import Strict
from pipeline.rec.params import EpochParams


class ExpertTrainParams(EpochParams):
    """params.yaml experts.train: the shared optimiser keys (batch_size, lr, weight_decay,
    warmup_steps, dtype, seed), the epoch keys of the LLM stages (epochs, steps_per_epoch, patience,
    min_lr, warmup_lr: validated as theirs; with epochs the cluster's valid_small rows select the
    checkpoint) and the expert's own."""

    prompt: Literal["cf", "text"]  # trained in: cf, ThinkRec's stage-2 model (CF slots); text, its stage-1 variant
    upper_layers: int = Field(ge=1)  # top layers whose LoRA the experts train (paper: 8 of 32)
    train_rows: int = Field(ge=1)  # distinct rows of the cluster's train rows (whole packs, rec.packing)
    reasoning_share: float = Field(ge=0, lt=1)  # share of micro-batches that are traces, added to the label ones


class GateTrainParams(Strict):
    """params.yaml gate.train (read when gate.kind is "trained")."""

    hidden: int = Field(ge=1)
    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    lr: float = Field(gt=0)
    seed: int


class ExpertsParams(Strict):
    """params.yaml `experts`."""

    n: int | None = Field(ge=2)
    slots: list[Annotated[int, Field(ge=0)]] = Field(min_length=2)  # one expert stage each; 2 clusters at least
    method: Literal["kmeans", "ward"]
    seed: int
    cluster_users: Literal["train", "all"]  # users with train rows, or every user of train, valid and test
    cold: Literal["global", "gate"]  # rows of users not clustered
    train: ExpertTrainParams

    @field_validator("slots")
    @classmethod
    def _distinct(cls, slots: list[int]) -> list[int]:
        if len(set(slots)) != len(slots):
            raise ValueError(f"slots {slots} repeat a slot (each names one expert stage)")
        return slots


class GateParams(Strict):
    """params.yaml `gate`."""

    kind: Literal["centroid", "trained"]
    temperature: float = Field(gt=0)
    subset: Literal["valid_small", "valid"]  # validation rows only, never test
    train: GateTrainParams
