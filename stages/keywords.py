"""Stage `keywords`: every item's keywords from the teacher LLM (with a counted category fallback).

Reads data/ingest/{items,interactions}.parquet and params `keywords` + `llm`; writes
data/keywords/item_keywords.parquet and metrics/keywords.json. Popularity (which items the LLM is
asked about) counts training interactions only, so the test period cannot decide it.
"""
from __future__ import annotations

import logging
import time
from typing import Annotated

from pydantic import Field

from pipeline import layout
from pipeline.artifacts import atomic_paths, read_frame, write_frame, write_json
from pipeline.keywords.item_text import WordBudgets
from pipeline.keywords.summarize import most_interacted_items, summarize_items
from pipeline.schemas import INTERACTIONS, ITEM_KEYWORDS, ITEMS
from pipeline.errors import run_stage
from pipeline.params import at_most, load_section
from stages.stamp import stamped
from stages.teacher import TeacherParams, llm_stage_metrics, teacher_chat

ITEMS_PATH = layout.ITEMS
INTERACTIONS_PATH = layout.INTERACTIONS
OUTPUT = layout.ITEM_KEYWORDS
METRICS = layout.metrics("keywords")


class KeywordParams(TeacherParams):
    budgets: WordBudgets
    max_items: int | None = Field(ge=0)
    max_keywords: int = Field(ge=1)
    min_keywords: Annotated[int, Field(ge=1), at_most("max_keywords")]  # more: every answer falls back


def main() -> None:
    started = time.perf_counter()
    params = load_section("keywords", KeywordParams)
    items = read_frame(ITEMS_PATH, ITEMS)
    ask = None
    if params.max_items is not None:
        interactions = read_frame(INTERACTIONS_PATH, INTERACTIONS)
        train = interactions[interactions["split"] == "train"]
        ask = most_interacted_items(train, params.max_items, items["item"])
    client, sampling = teacher_chat(params)
    result = summarize_items(
        items, client, params.budgets, sampling, params.max_keywords, params.min_keywords, ask
    )
    n = len(result.table)
    metrics = {
        "items": n,
        "items_asked": n - result.not_asked,
        "items_not_asked": result.not_asked,  # outside max_items: categories used
        "fallbacks": result.fallbacks,  # asked, but the answer was unusable: categories used
        "fallback_fraction": result.fallbacks / (n - result.not_asked) if n > result.not_asked else 0.0,
        # items whose keywords are their categories (not asked or unusable answer), of all items
        "category_keywords_fraction": (result.not_asked + result.fallbacks) / n if n else 0.0,
        "items_without_keywords": result.empty,
        "mean_keywords": float(result.table["keywords"].map(len).mean()) if n else 0.0,
        **llm_stage_metrics(client, started, result),
    }
    with atomic_paths(OUTPUT, METRICS) as (table_tmp, metrics_tmp):  # both or neither
        write_frame(result.table, table_tmp, ITEM_KEYWORDS)
        write_json(stamped(metrics, "keywords"), metrics_tmp)
    logging.info(
        "keywords: %d items, %d fallbacks, %d calls / %d cache hits, %.1f s",
        n, result.fallbacks, metrics["llm"]["calls"], metrics["llm"]["cache_hits"], metrics["stage_seconds"],
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    run_stage(main)
