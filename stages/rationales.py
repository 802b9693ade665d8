"""Stage `rationales` (RDRec): the user's preference and the item's attributes for a sample of
training interactions, from their review text (or, without reviews, the item's metadata + rating).

Reads data/ingest/{interactions,items}.parquet and params `rationales` + `llm`; writes
data/rationales/rationales.parquet and metrics/rationales.json.
"""
from __future__ import annotations

import logging
import time
from typing import Literal

from pydantic import Field

from pipeline import layout
from pipeline.artifacts import atomic_paths, read_frame, write_frame, write_json
from pipeline.keywords.item_text import WordBudgets
from pipeline.llm.config import LLMConfig
from pipeline.rationales.distill import distill_rationales, select_rationale_rows
from pipeline.schemas import INTERACTIONS, ITEMS, RATIONALES
from pipeline.errors import run_stage
from pipeline.params import load_section
from stages.stamp import stamped
from stages.teacher import TeacherParams, llm_stage_metrics, teacher_chat

OUTPUT = layout.RATIONALES
METRICS = layout.metrics("rationales")


class RationaleParams(TeacherParams):
    count: int = Field(ge=0)
    review_words: int = Field(ge=1)
    budgets: WordBudgets
    answer_format: Literal["auto", "json_schema", "prefill", "plain"]
    seed: int


def answer_format(params: RationaleParams, backend: str) -> str:
    """auto: structured output (json_schema) where the backend can constrain or validate it
    (openai, vllm), a prefilled "User preference:" on the local backend, which cannot."""
    if params.answer_format != "auto":
        return params.answer_format
    return "prefill" if backend == "local" else "json_schema"


def parse_counts_by_kind(table) -> dict:
    """input kind (review | metadata) -> rows, parsed, failures, failure_fraction."""
    counts = {}
    for kind, group in table.groupby("input_kind", sort=True):
        failures = int((group["source"] == "fallback").sum())
        counts[str(kind)] = {"rows": len(group), "parsed": len(group) - failures, "failures": failures,
                             "failure_fraction": failures / len(group)}
    return counts


def main() -> None:
    started = time.perf_counter()
    params = load_section("rationales", RationaleParams)
    interactions = read_frame(layout.INTERACTIONS, INTERACTIONS)
    items = read_frame(layout.ITEMS, ITEMS)
    train = interactions[interactions["split"] == "train"]
    rows, kind = select_rationale_rows(train, params.count, params.seed)

    client, sampling = teacher_chat(params)
    fmt = answer_format(params, load_section("llm", LLMConfig).backend)
    result = distill_rationales(rows, kind, items, client, sampling, params.budgets, params.review_words, fmt)
    n = len(result.table)
    metrics = {
        "rows": n,
        "input_kind": kind,
        "answer_format": fmt,
        "parse_failures": result.parse_failures,
        "parse_failure_fraction": result.parse_failures / n if n else 0.0,
        "by_input_kind": parse_counts_by_kind(result.table),
        "answer_forms": result.forms,
        **llm_stage_metrics(client, started, result),
    }
    with atomic_paths(OUTPUT, METRICS) as (table_tmp, metrics_tmp):  # both or neither
        write_frame(result.table, table_tmp, RATIONALES)
        write_json(stamped(metrics, "rationales"), metrics_tmp)
    logging.info(
        "rationales: %d rows from %s, %d parse failures, %d calls / %d cache hits, %.1f s",
        n, kind, result.parse_failures, metrics["llm"]["calls"], metrics["llm"]["cache_hits"],
        metrics["stage_seconds"],
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    run_stage(main)
