"""params.yaml's `rec` section as pydantic models. params.yaml holds every default; these models
only validate (no field here carries a default of its own)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from pipeline.params import Strict
from pipeline.rec.device import DEVICE_SETTING
from pipeline.rec.losses import LossParams
from pipeline.rec.model import LoraParams
from pipeline.rec.packing import PackingParams
from pipeline.rec.training import TrainParams


class PromptParams(Strict):
    version: str
    history_items: int = Field(ge=0)
    title_words: int = Field(ge=1)
    keywords_per_item: int = Field(ge=0)
    max_answer_tokens: int = Field(ge=1)


class ProjectorParams(Strict):
    expansion: int = Field(ge=1)
    match_embedding_norm: bool


class ScoringParams(Strict):
    batch_size: int = Field(ge=1)
    topn_batch_size: int = Field(ge=1)
    selection: Literal["weighted", "auc", "uauc"]  # weighted: AUC/4 + UAUC/3
    valid: bool


class RecParams(Strict):
    """params.yaml's `rec` section."""

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
    # variant -> fields of its stage's section it trains with instead (a second seed: {seed: 1})
    overrides: dict[str, dict[str, Any]]

    @model_validator(mode="after")
    def _overrides_are_training_fields(self) -> "RecParams":
        for variant, fields in self.overrides.items():
            unknown = sorted(set(fields) - set(TrainParams.model_fields))
            if unknown:
                raise ValueError(f"overrides.{variant}: {unknown} are not fields of rec.stage1 / rec.stage2")
            TrainParams.model_validate({**self.stage1.model_dump(), **fields})
        return self

    def training(self, variant: str, stage: int) -> TrainParams:
        """The training section `variant` uses: rec.stage<stage>, with its rec.overrides applied."""
        base = self.stage1 if stage == 1 else self.stage2
        fields = self.overrides.get(variant)
        return base.model_copy(update=TrainParams.model_validate({**base.model_dump(), **fields}).model_dump()) \
            if fields else base
