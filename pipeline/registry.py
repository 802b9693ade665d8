"""Every model the pipeline trains or evaluates, once.

Everything that lists models reads this: the LLM-recommender variant specs (pipeline/rec/variants.py),
evaluate's models and paired comparisons, which models rank the top-N candidates, which ones
`explain` may name, the CLI's "run this stage first" messages, the ROC plot, and dvc.yaml, whose
per-model stages `python -m stages.dvc_yaml --write` generates from it.

Adding a model is one entry here plus its params (a second seed of an LLM variant: its
`rec.overrides.<name>` in params.yaml), then `python -m stages.dvc_yaml --write`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Family = Literal["cf", "baseline", "llm", "experts", "rdrec", "fused"]
Input = Literal["cf", "keywords", "traces", "rationales"]  # what a model reads beyond data/ingest
FAMILIES: tuple[str, ...] = Family.__args__
INPUTS: tuple[str, ...] = Input.__args__


@dataclass(frozen=True)
class ModelEntry:
    """One model. For an LLM recommender, no `starts_from` means stage 1 (a new LoRA on text prompts),
    a `starts_from` means stage 2 (that model's LoRA frozen, a new CF projector)."""

    name: str
    family: Family
    stage: str  # the dvc.yaml stage that writes it
    starts_from: str | None = None  # the model whose trained weights it starts from
    inputs: tuple[Input, ...] = ()
    compared_with: tuple[str, ...] = ()  # paired comparisons: metrics/<name>.json's vs_<other>
    evaluated: bool = True  # a results-table row: evaluate reads data/predictions/<name>.parquet
    pointwise: bool = True  # scores evaluation rows (AUC, UAUC, ROC); False: top-N candidates only
    topn: bool = False  # ranks the top-N candidates (data/ingest/topn_candidates.parquet)
    ranks: bool = True  # evaluated: ranks the catalogue for every evaluated user (data/ranking/<name>.parquet)
    explainable: bool = False  # an LLM recommender `explain` (explain.models) may name
    in_default_run: bool = True  # False: known to the code, left out of dvc.yaml (and evaluate)


def _cf(name: str) -> ModelEntry:
    return ModelEntry(name, "cf", f"cf@{name}", topn=True)


def _stage1(name: str, *inputs: Input, evaluated: bool = False, **kwargs) -> ModelEntry:
    return ModelEntry(name, "llm", name, inputs=inputs, evaluated=evaluated, **kwargs)


def _stage2(name: str, lora: str, *inputs: Input, **kwargs) -> ModelEntry:
    return ModelEntry(name, "llm", name, starts_from=lora, inputs=("cf", *inputs), **kwargs)


MODELS: tuple[ModelEntry, ...] = (
    _cf("mf"),
    _cf("lightgcn"),
    _cf("sasrec"),
    ModelEntry("history", "baseline", "baselines", ranks=False),  # the user's liked share of their last history items
    ModelEntry("popularity", "baseline", "baselines", topn=True),  # train counts of the item
    # TALLRec-style is a stage-1 model and a results row; CoLLM-style starts from its LoRA
    _stage1("tallrec", evaluated=True, explainable=True),
    _stage1("thinkrec_stage1", "keywords", "traces"),
    _stage1("thinkrec_no_traces_stage1", "keywords"),
    _stage1("thinkrec_no_keywords_stage1", "traces", in_default_run=False),
    _stage2("collm", "tallrec", compared_with=("tallrec",), explainable=True),
    # every evaluated LLM row re-ranks the retriever's top K over the whole catalogue (pipeline/ranking);
    # the sampled 1 + N candidates (topn) are the CF models', popularity's and RDRec's
    _stage2("thinkrec", "thinkrec_stage1", "keywords", "traces", compared_with=("collm", "thinkrec_no_traces"),
            explainable=True),
    _stage2("thinkrec_no_traces", "thinkrec_no_traces_stage1", "keywords"),
    _stage2("thinkrec_no_keywords", "thinkrec_no_keywords_stage1", "traces", in_default_run=False),
    # ThinkRec's stage-1 LoRA refined per user cluster, fused per row by the gate
    ModelEntry("thinkrec_experts", "experts", "thinkrec_experts", starts_from="thinkrec",
               inputs=("cf", "keywords", "traces"), compared_with=("thinkrec",)),
    # RDRec's students rank top-N candidates only; their task weights are params (rdrec.variants)
    ModelEntry("rdrec", "rdrec", "rdrec", inputs=("cf", "rationales"), pointwise=False, topn=True,
               compared_with=("rdrec_no_rationales", "popularity")),
    ModelEntry("rdrec_no_rationales", "rdrec", "rdrec_no_rationales", inputs=("cf",), pointwise=False,
               topn=True, compared_with=("popularity",)),
    # ThinkRec's score and its retriever's (the selected CF model) fused per row, the weight chosen on
    # valid_small (pipeline/ranking/fusion.py); compared with ThinkRec and the best CF model (vs_best_cf: the
    # retriever itself under cf.model: auto)
    ModelEntry("thinkrec_fused", "fused", "thinkrec_fused", starts_from="thinkrec", inputs=("cf",),
               compared_with=("thinkrec",)),
)


def models(family: Family | None = None, *, default_run: bool = True) -> list[ModelEntry]:
    """The registry's entries in order (of one family), by default only those of the default run."""
    return [entry for entry in MODELS
            if (family is None or entry.family == family) and (entry.in_default_run or not default_run)]


def get_model(name: str) -> ModelEntry:
    for entry in MODELS:
        if entry.name == name:
            return entry
    raise KeyError(f"unknown model '{name}' (pipeline/registry.py knows: {[entry.name for entry in MODELS]})")


def evaluated() -> list[str]:
    """Evaluate's models, in the results table's order."""
    return [entry.name for entry in models() if entry.evaluated]


def comparisons() -> dict[str, list[str]]:
    """model -> the models it is compared with, for every evaluated model that has any."""
    names = set(evaluated())
    return {entry.name: [other for other in entry.compared_with if other in names]
            for entry in models() if entry.name in names and entry.compared_with}


def ranking_models() -> list[str]:
    """Evaluate's models that rank the whole catalogue (data/ranking/<name>.parquet), in order."""
    return [entry.name for entry in models() if entry.evaluated and entry.ranks]


def fused_parts() -> set[str]:
    """The models a fused entry of the default run combines with its retriever (they score valid_small)."""
    return {entry.starts_from for entry in models("fused")}


def topn_models(family: Family | None = None) -> list[str]:
    return [entry.name for entry in models(family) if entry.topn]


def check(entries: tuple[ModelEntry, ...] = MODELS) -> None:
    """Raise ValueError on an inconsistent registry: a duplicate name, an unknown family or input, or
    a reference (starts_from, compared_with) to a model that is not there or not in the default run."""
    names = [entry.name for entry in entries]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"pipeline/registry.py: models listed twice: {duplicates}")
    by_name = {entry.name: entry for entry in entries}
    for entry in entries:
        where = f"pipeline/registry.py: {entry.name}"
        if entry.family not in FAMILIES:
            raise ValueError(f"{where}: unknown family {entry.family!r} (one of {FAMILIES})")
        unknown = [name for name in entry.inputs if name not in INPUTS]
        if unknown:
            raise ValueError(f"{where}: unknown inputs {unknown} (known: {INPUTS})")
        for other in filter(None, (entry.starts_from, *entry.compared_with)):
            if other not in by_name:
                raise ValueError(f"{where}: refers to unknown model '{other}'")
            if entry.in_default_run and not by_name[other].in_default_run:
                raise ValueError(f"{where}: refers to '{other}', which is outside the default run")
        if entry.compared_with and not entry.evaluated:
            raise ValueError(f"{where}: compared_with needs an evaluated model")
        if not (entry.pointwise or entry.topn):
            raise ValueError(f"{where}: scores neither evaluation rows nor top-N candidates")


check()
