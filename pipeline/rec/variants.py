"""The LLM-recommender variants, in the method's order: a view of pipeline/registry.py's `llm` models.

Stage 1 trains a new LoRA on text prompts (no CF slots): TALLRec-style without keywords and traces;
ThinkRec's thinking activation (keyword-enriched items, reasoning-trace batches) enters here.
Stage 2 freezes a stage-1 LoRA and trains a new projector that writes CF vectors into the prompt's
slots: CoLLM-style on TALLRec's LoRA, ThinkRec on ThinkRec's. The two ThinkRec ablations differ
from ThinkRec in exactly one thing (no traces, or no keywords) in both stages.
"""
from __future__ import annotations

from dataclasses import dataclass

from pipeline import registry


@dataclass(frozen=True)
class VariantSpec:
    name: str
    stage: int  # 1: new LoRA, text prompts; 2: `lora_from`'s LoRA frozen, new projector, CF slots
    keywords: bool  # items show LLM keywords
    traces: bool  # reasoning traces are mixed into training (rec.stage<N>.reasoning_share)
    lora_from: str | None = None  # stage 2: the stage-1 variant whose LoRA is reused
    reported: bool = True  # a results-table row: scores test_small into data/predictions/<name>.parquet
    topn: bool = False  # also scores the top-N candidates

    @property
    def cf_slots(self) -> bool:
        return self.stage == 2


def spec_of(entry: registry.ModelEntry) -> VariantSpec:
    return VariantSpec(entry.name, 2 if entry.starts_from else 1, keywords="keywords" in entry.inputs,
                       traces="traces" in entry.inputs, lora_from=entry.starts_from,
                       reported=entry.evaluated, topn=entry.topn)


def variants() -> dict[str, VariantSpec]:
    """Every LLM variant the registry knows, in or outside the default run."""
    return {entry.name: spec_of(entry) for entry in registry.models("llm", default_run=False)}


def get_variant(name: str) -> VariantSpec:
    known = variants()
    if name not in known:
        raise KeyError(f"unknown LLM-recommender variant '{name}' (known: {sorted(known)})")
    return known[name]
