"""Rationales for a sample of training interactions: pick rows, ask the teacher, parse, fall back."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.keywords.item_text import WordBudgets, item_text
from pipeline.llm.chat import SamplingParams
from pipeline.rationales.prompt import (
    AnswerFormat,
    RationaleAnswer,
    answer_text,
    metadata_input,
    parse_rationale,
    rationale_request,
    review_input,
)

REVIEW, METADATA = "review", "metadata"


def has_review(reviews: pd.Series) -> pd.Series:
    return reviews.fillna("").astype(str).str.strip().str.len() > 0


def select_rationale_rows(train: pd.DataFrame, count: int, seed: int) -> tuple[pd.DataFrame, str]:
    """Up to `count` training rows (sorted by row) and the input kind: rows with review text when
    the dataset has reviews, else any rows (their input is the item's metadata + the rating)."""
    reviewed = has_review(train["review"])
    kind = REVIEW if reviewed.any() else METADATA
    pool = (train[reviewed] if kind == REVIEW else train).sort_values("row")
    if len(pool) > count:
        pool = pool.iloc[np.sort(np.random.default_rng(seed).choice(len(pool), count, replace=False))]
    return pool, kind


@dataclass
class RationaleResult:
    table: pd.DataFrame  # rows of schemas.RATIONALES, in row order
    parse_failures: int  # answers that could not be parsed (fallback text used)
    input_kind: str
    forms: dict[str, int]  # how answers were read: json | lines | sentences | fallback -> count
    requests: int = 0  # teacher requests (cached or not): the stage's cost with an empty cache
    tokens_in: int = 0
    tokens_out: int = 0


def distill_rationales(
    rows: pd.DataFrame,
    kind: str,
    items: pd.DataFrame,
    client,
    sampling: SamplingParams,
    budgets: WordBudgets,
    review_words: int,
    answer_format: AnswerFormat = "plain",
) -> RationaleResult:
    """Ask the teacher for every row of `rows` (row, item, rating, label, review), in
    `answer_format` (prompt.py); json_schema answers are validated as RationaleAnswer."""
    if kind == REVIEW:
        inputs = [review_input(r, review_words) for r in rows["review"]]
        fallbacks = [" ".join(str(r).split()[:review_words]) for r in rows["review"]]
    else:
        texts = {
            int(r.item): item_text(r.title, r.categories, r.description, r.extra, budgets)
            for r in items.itertuples(index=False)
        }
        inputs = [
            metadata_input(texts[int(r.item)], float(r.rating), int(r.label) == 1)
            for r in rows.itertuples(index=False)
        ]
        fallbacks = inputs
    requests = [rationale_request(t, kind, sampling, answer_format) for t in inputs]
    schema = RationaleAnswer if answer_format == "json_schema" else None
    responses = client.complete(requests, desc="rationales", response_model=schema)
    records, failures, forms = [], 0, {}
    for row, response, fallback in zip(rows["row"], responses, fallbacks):
        structured = response.parsed if schema is not None else None
        parsed = parse_rationale(answer_text(response.text, answer_format), fallback, structured)
        failures += not parsed.parsed
        forms[parsed.form] = forms.get(parsed.form, 0) + 1
        records.append({
            "row": int(row),
            "user_preference": parsed.user_preference,
            "item_attributes": parsed.item_attributes,
            "source": "llm" if parsed.parsed else "fallback",
            "input_kind": kind,
        })
    columns = ["row", "user_preference", "item_attributes", "source", "input_kind"]
    return RationaleResult(
        pd.DataFrame(records, columns=columns), failures, kind, dict(sorted(forms.items())), len(responses),
        sum(r.tokens_in for r in responses), sum(r.tokens_out for r in responses),
    )
