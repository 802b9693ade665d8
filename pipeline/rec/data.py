"""A variant's inputs and its prompt encoder: the one place that turns interaction rows into the
prompts a variant trains on, is scored on, explains and recommends with."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from pipeline import schemas
from pipeline.artifacts import read_frame
from pipeline.rec.examples import CFVectors, RecExample, build_catalog, build_examples, load_cf_vectors
from pipeline.rec.params import PromptParams
from pipeline.rec.prompts import get_template
from pipeline.rec.variants import VariantSpec


@dataclass(frozen=True)
class RecInputs:
    """Artifact paths a variant may read (None = not read)."""

    interactions: Path
    items: Path
    subsets: Path
    topn_candidates: Path | None = None
    user_vectors: Path | None = None
    item_vectors: Path | None = None
    row_user_vectors: Path | None = None  # sequential CF models: the user's state before each row
    keywords: Path | None = None
    traces: Path | None = None


@dataclass
class VariantData:
    interactions: pd.DataFrame
    items: pd.DataFrame
    subsets: pd.DataFrame
    vectors: CFVectors | None  # CF tables (stage-2 variants)
    keywords: pd.DataFrame | None  # ITEM_KEYWORDS (variants with keywords)
    traces: dict[int, str]  # row -> trace (variants trained with traces)
    topn_candidates: pd.DataFrame | None

    def subset(self, name: str) -> pd.DataFrame:
        rows = self.subsets.loc[self.subsets["subset"] == name, "row"]
        if rows.empty:
            raise ValueError(f"subsets.parquet: subset '{name}' is empty")
        return self.interactions[self.interactions["row"].isin(rows)]


def load_variant_data(spec: VariantSpec, inputs: RecInputs) -> VariantData:
    """Read (and schema-check) what `spec` needs from `inputs`."""
    vectors = None
    if spec.cf_slots:
        vectors = load_cf_vectors(inputs.user_vectors, inputs.item_vectors, spec.name, inputs.row_user_vectors)
    keywords = read_frame(_needed(inputs.keywords, spec, "keywords"), schemas.ITEM_KEYWORDS) if spec.keywords else None
    traces: dict[int, str] = {}
    if spec.traces:
        frame = read_frame(_needed(inputs.traces, spec, "traces"), schemas.TRACES)
        traces = dict(zip(frame["row"].astype(int), frame["trace"]))
    candidates = None
    if inputs.topn_candidates is not None:
        candidates = read_frame(inputs.topn_candidates, schemas.TOPN_CANDIDATES)
    return VariantData(
        read_frame(inputs.interactions, schemas.INTERACTIONS),
        read_frame(inputs.items, schemas.ITEMS),
        read_frame(inputs.subsets, schemas.SUBSET_ROWS),
        vectors, keywords, traces, candidates,
    )


Encoder = Callable[..., list[RecExample]]


def variant_encoder(spec: VariantSpec, prompt: PromptParams, tokenizer, data: VariantData) -> Encoder:
    """encode(frame, traces=None, desc=...) -> the variant's RecExamples of `frame`'s rows
    (INTERACTIONS columns): keywords and CF slots exactly as the variant is trained."""
    catalog = build_catalog(data.items, data.keywords, prompt.title_words,
                            prompt.keywords_per_item if spec.keywords else 0)
    template = get_template(prompt.version)

    def encode(frame: pd.DataFrame, traces: dict[int, str] | None = None, desc: str = "encode") -> list[RecExample]:
        return build_examples(
            frame, catalog, tokenizer, template, prompt.history_items, data.vectors, traces,
            prompt.max_answer_tokens, desc, prompt.slots(spec.name),
        )

    return encode


def _needed(path: Path | None, spec: VariantSpec, what: str) -> Path:
    if path is None:
        raise ValueError(f"{spec.name}: needs the {what} artifact, but no path was given")
    return path
