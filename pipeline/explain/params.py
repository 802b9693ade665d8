"""params.yaml's `explain` section: which trained recommenders write their reasoning, for how many
gold rows, and how (greedy generation's lengths and repetition controls)."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from pipeline.rec.params import RepetitionControls
from pipeline.explain.says_nothing import SaysNothingRule
from pipeline import registry
from pipeline.params import Strict, at_most


class ExplainParams(Strict):
    models: list[str] = Field(min_length=1)  # explainable registry models (data/rec/<name>), first = the ThinkRec-style one
    rows: int = Field(ge=1)  # gold traces explained (the first by row id)
    max_new_tokens: int = Field(ge=1)
    min_new_tokens: Annotated[int, Field(ge=0), at_most("max_new_tokens")]
    no_repeat_ngram_size: int = Field(ge=0)  # 0 = off
    repetition_penalty: float = Field(gt=0.0)  # 1.0 = off
    says_nothing: SaysNothingRule  # a reason that says nothing: counted here, not printed by `thinkrec recommend`
    batch_size: int = Field(ge=1)
    dtype: Literal["auto", "bfloat16", "float32"]
    threads: int = Field(ge=1)

    @field_validator("models")
    @classmethod
    def _explainable(cls, models: list[str]) -> list[str]:
        allowed = [entry.name for entry in registry.models("llm") if entry.explainable]
        unknown = [name for name in models if name not in allowed]
        if unknown:
            raise ValueError(f"{unknown} cannot be explained: explainable models are {allowed} (pipeline/registry.py)")
        return models

    def controls(self) -> RepetitionControls:
        return RepetitionControls(self.no_repeat_ngram_size, self.repetition_penalty)
