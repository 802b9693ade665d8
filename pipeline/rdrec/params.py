"""params.yaml's `rdrec` section as pydantic models (params.yaml holds every default)."""
from __future__ import annotations

from pydantic import Field, field_validator

from pipeline.params import Strict
from pipeline.rec.params import OptimizerParams
from pipeline.sizes import Size

TASKS = ("rank", "next", "preference", "attributes")
RATIONALE_TASKS = ("preference", "attributes")


class StudentPrompt(Strict):
    history_items: int = Field(ge=0)  # last items shown in user prompts (title + liked / not liked)
    title_words: int = Field(ge=1)
    max_rationale_tokens: int = Field(ge=1)  # rationale answers cut to this many tokens


class StudentTraining(OptimizerParams):
    """params.yaml rdrec.train: the shared optimiser keys (batch_size: packs per micro-batch, a
    rank pack being one user prompt with 1 + negatives targets; lr, weight_decay, warmup_steps,
    dtype, seed) and the student's own."""

    rank_positives: Size  # liked train rows sampled as rank positives: a count, a fraction of them or all (pipeline/sizes.py)
    negatives: int = Field(ge=1)  # never-interacted items sampled per positive (label 0)
    rank_bce_weight: float = Field(ge=0, le=1)  # rank rows: BCE weight (LM on Yes/No gets 1 - this)
    use_fallback_rationales: bool  # also learn rationales the teacher's answer did not give (fallback text)


class StudentScoring(Strict):
    topn_batch_size: int = Field(ge=1)
    ranking_batch_size: int = Field(ge=1)  # users' next-item prompts per batch in the full-catalogue ranking


class RDRecParams(Strict):
    """params.yaml's `rdrec` section; `variants` maps a stage name to its task sampling weights."""

    variants: dict[str, dict[str, float]]
    prompt: StudentPrompt
    train: StudentTraining
    scoring: StudentScoring

    @field_validator("variants")
    @classmethod
    def _known_tasks(cls, variants: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for name, weights in variants.items():
            unknown = sorted(set(weights) - set(TASKS))
            if unknown:
                raise ValueError(f"variant {name}: unknown tasks {unknown} (known: {list(TASKS)})")
            if any(w < 0 for w in weights.values()) or weights.get("rank", 0) <= 0 or weights.get("next", 0) <= 0:
                # next: the stage ranks the whole catalogue with the next-item head (next_item.py)
                raise ValueError(f"variant {name}: needs positive 'rank' and 'next' weights and no negative weights")
        return variants
