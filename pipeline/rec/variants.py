"""The LLM-recommender variants, in the method's order.

Stage 1 trains a new LoRA on text prompts (no CF slots): TALLRec-style without keywords and traces;
ThinkRec's thinking activation (keyword-enriched items, reasoning-trace batches) enters here.
Stage 2 freezes a stage-1 LoRA and trains a new projector that writes CF vectors into the prompt's
slots: CoLLM-style on TALLRec's LoRA, ThinkRec on ThinkRec's. The two ThinkRec ablations differ
from ThinkRec in exactly one thing (no traces, or no keywords) in both stages.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VariantSpec:
    name: str
    stage: int  # 1: new LoRA, text prompts; 2: `lora_from`'s LoRA frozen, new projector, CF slots
    keywords: bool  # items show LLM keywords
    traces: bool  # reasoning traces are mixed into training (rec.stage<N>.reasoning_prob)
    lora_from: str | None = None  # stage 2: the stage-1 variant whose LoRA is reused
    reported: bool = True  # a row of the results table: scores test_small and the top-N candidates

    @property
    def cf_slots(self) -> bool:
        return self.stage == 2


VARIANTS: dict[str, VariantSpec] = {
    spec.name: spec
    for spec in (
        VariantSpec("tallrec", 1, keywords=False, traces=False),
        VariantSpec("thinkrec_lora", 1, keywords=True, traces=True, reported=False),
        VariantSpec("thinkrec_no_traces_lora", 1, keywords=True, traces=False, reported=False),
        VariantSpec("thinkrec_no_keywords_lora", 1, keywords=False, traces=True, reported=False),
        VariantSpec("collm", 2, keywords=False, traces=False, lora_from="tallrec"),
        VariantSpec("thinkrec", 2, keywords=True, traces=True, lora_from="thinkrec_lora"),
        VariantSpec("thinkrec_no_traces", 2, keywords=True, traces=False, lora_from="thinkrec_no_traces_lora"),
        VariantSpec("thinkrec_no_keywords", 2, keywords=False, traces=True, lora_from="thinkrec_no_keywords_lora"),
    )
}


def get_variant(name: str) -> VariantSpec:
    if name not in VARIANTS:
        raise KeyError(f"unknown LLM-recommender variant '{name}' (known: {sorted(VARIANTS)})")
    return VARIANTS[name]
