"""The LLM-recommender variants, in the method's order: a view of pipeline/registry.py's `llm` models.

Stage 1 trains a new LoRA on text prompts (no CF slots): TALLRec-style without keywords and traces;
ThinkRec's thinking activation (keyword-enriched items, reasoning-trace batches) enters here.
Stage 2 freezes a stage-1 LoRA and trains a new projector that writes CF vectors into the prompt's
slots: CoLLM-style on TALLRec's LoRA, ThinkRec on ThinkRec's. The two ThinkRec ablations differ
from ThinkRec in exactly one thing (no traces, or no keywords) in both stages.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from pipeline import registry


@dataclass(frozen=True)
class VariantSpec:
    """What the training and scoring code asks of an LLM variant, read from its registry entry."""

    entry: registry.ModelEntry

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def stage(self) -> int:
        """1: new LoRA, text prompts; 2: `lora_from`'s LoRA frozen, new projector, CF slots."""
        return 2 if self.entry.starts_from else 1

    @property
    def keywords(self) -> bool:  # items show LLM keywords
        return "keywords" in self.entry.inputs

    @property
    def traces(self) -> bool:  # reasoning traces are mixed into training (rec.stage<N>.reasoning_share)
        return "traces" in self.entry.inputs

    @property
    def lora_from(self) -> str | None:  # stage 2: the stage-1 variant whose LoRA is reused
        return self.entry.starts_from

    @property
    def reported(self) -> bool:  # a results-table row: scores test_small into data/predictions/<name>.parquet
        return self.entry.evaluated

    @property
    def scores_valid(self) -> bool:  # a fused model combines it (registry family fused): its final weights score valid_small
        return self.entry.evaluated and self.name in registry.fused_parts()

    @property
    def topn(self) -> bool:  # also scores the top-N candidates
        return self.entry.topn

    @property
    def cf_slots(self) -> bool:
        return self.stage == 2

    def without_traces(self) -> "VariantSpec":
        """The same variant reading no traces (they are training answers, never part of a prompt)."""
        return VariantSpec(replace(self.entry, inputs=tuple(i for i in self.entry.inputs if i != "traces")))


def spec_of(entry: registry.ModelEntry) -> VariantSpec:
    return VariantSpec(entry)


def variants() -> dict[str, VariantSpec]:
    """Every LLM variant the registry knows, in or outside the default run."""
    return {entry.name: spec_of(entry) for entry in registry.models("llm", default_run=False)}


def get_variant(name: str) -> VariantSpec:
    known = variants()
    if name not in known:
        raise KeyError(f"unknown LLM-recommender variant '{name}' (known: {sorted(known)})")
    return known[name]
