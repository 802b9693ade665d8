"""params.yaml's `rec` section as pydantic models. params.yaml holds every default; these models
only validate (no field here carries a default of its own)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from pipeline.rec.device import DEVICE_SETTING
from pipeline.rec.losses import LossParams
from pipeline.rec.model import LoraParams
from pipeline.rec.packing import PackingParams
from pipeline.rec.training import TrainParams


class PromptParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str
    history_items: int = Field(ge=0)
    title_words: int = Field(ge=1)
    keywords_per_item: int = Field(ge=0)
    max_answer_tokens: int = Field(ge=1)


class ProjectorParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expansion: int = Field(ge=1)
    match_embedding_norm: bool


class ScoringParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    batch_size: int = Field(ge=1)
    topn_batch_size: int = Field(ge=1)
    selection: Literal["reference", "auc", "uauc"]
    valid: bool
    topn: list[str]


class RecParams(BaseModel):
    """params.yaml's `rec` section."""

    model_config = ConfigDict(extra="forbid")
    backbone: str
    threads: int = Field(ge=1)
    device: str = Field(pattern=DEVICE_SETTING)  # auto | cpu | cuda | cuda:N (pipeline/rec/device.py)
    answer_logit: Literal["yes_minus_no", "yes"]
    prompt: PromptParams
    lora: LoraParams
    projector: ProjectorParams
    loss: LossParams
    scoring: ScoringParams
    packing: PackingParams
    stage1: TrainParams
    stage2: TrainParams
