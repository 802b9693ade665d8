"""Stage `traces`: verified reasoning traces on selected training rows, and gold traces on a
fixed test_tiny sample (the gold explanations the explain stage scores against).

Reads data/ingest/{interactions,items,subsets}.parquet, data/keywords/item_keywords.parquet,
data/cf_selected/predictions.parquet (the selected CF model's scores, for selection = hard;
`traces.hard_scores`, a predictions file scoring the train rows, e.g. stage hard_scores's, instead
when set) and params `traces`,
`rec.prompt.{version,history_items,title_words,keywords_per_item}` (the student's rendering, which
the teacher's question embeds) and `llm`; writes data/traces/traces.parquet,
data/traces/gold_traces.parquet and metrics/traces.json.
"""
from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Literal

from pydantic import Field

from pipeline import layout
from pipeline.artifacts import atomic_paths, read_frame, write_frame, write_json
from pipeline.cf.selected import SELECTED_PREDICTIONS, selected_cf_model
from pipeline.rec.examples import build_catalog
from pipeline.rec.prompts import get_template
from pipeline.rec.params import PromptParams
from pipeline.schemas import INTERACTIONS, ITEM_KEYWORDS, ITEMS, PREDICTIONS, SUBSET_ROWS, TRACES
from pipeline.traces.selection import score_threshold, select_gold_rows, select_trace_rows
from pipeline.traces.verification import (
    balance_labels,
    label_counts,
    make_cases,
    run_verification,
    traces_table,
    verification_stats,
)
from pipeline.errors import BadInput, MissingInput, run_stage
from pipeline.params import Strict, load_section
from stages.stamp import stamped
from stages.teacher import TeacherParams, llm_stage_metrics, teacher_chat

KEYWORDS = layout.ITEM_KEYWORDS
OUTPUT = layout.TRACES
GOLD_OUTPUT = layout.GOLD_TRACES
METRICS = layout.metrics("traces")


class GoldParams(Strict):

    count: int = Field(ge=0)  # rows have at least rec.prompt.history_items earlier interactions


class TraceParams(TeacherParams):
    selection: Literal["hard", "random", "per_label"]
    count: int = Field(ge=0)
    hard_scores: str | None = Field(min_length=1)  # None: the selected CF model's predictions
    score_threshold: float | None
    min_history: int = Field(ge=0)
    max_rounds: int | None = Field(ge=1)  # None: until verified, capped by verification.round_limit
    unverified: Literal["drop", "keep_label"]
    min_reasoning_words: int = Field(ge=1)
    ask_verdict: bool
    balance_labels: bool
    seed: int
    gold: GoldParams


def student_prompt() -> PromptParams:
    """The student's rendering (rec.prompt, validated as the rec stages do); the teacher is shown
    its version, history_items, title_words and keywords_per_item."""
    return load_section("rec.prompt", PromptParams)


def choose_rows(params: TraceParams, interactions) -> tuple:
    """(selected training rows, selection info for the metrics)."""
    train = interactions[interactions["split"] == "train"]
    info = {"mode": params.selection, "train_rows": len(train)}
    predictions, threshold, where = None, None, str(SELECTED_PREDICTIONS)
    named = params.selection == "hard" and params.hard_scores is not None
    if named:
        where = f"traces.hard_scores: {params.hard_scores}"
        predictions = read_hard_scores(Path(params.hard_scores))
        info.update(hard_scores=params.hard_scores,
                    hard_scores_sha256=hashlib.sha256(Path(params.hard_scores).read_bytes()).hexdigest())
    elif params.selection == "hard":
        predictions = read_frame(SELECTED_PREDICTIONS, PREDICTIONS)
        info.update(cf_model=selected_cf_model())
    if predictions is not None:
        threshold = score_threshold(predictions["score"], params.score_threshold)
        info.update(score_threshold=threshold)
    rows = select_trace_rows(
        train, params.selection, params.count, params.seed, params.min_history,
        predictions, threshold, predictions_path=where, complete=named,
    )
    info["selected"] = len(rows)
    return rows, info


def read_hard_scores(path: Path):
    """traces.hard_scores: a PREDICTIONS file of a model's scores of the train split (stage
    hard_scores writes data/predictions/hard_scores.parquet while hard_scores.model is set; or a file
    of your own); its errors name the key."""
    try:
        return read_frame(path, PREDICTIONS)
    except MissingInput:
        raise MissingInput(f"traces.hard_scores: {path} not found (a predictions file scoring the train rows: stage "
                           "hard_scores writes one while hard_scores.model is set and dvc.yaml lists it, `python -m "
                           "stages.dvc_yaml --write`; null takes the selected CF model's)") from None
    except BadInput as err:
        raise type(err)(f"traces.hard_scores: {err}") from None


def main() -> None:
    started = time.perf_counter()
    params = load_section("traces", TraceParams)
    prompt = student_prompt()
    template = get_template(prompt.version)
    interactions = read_frame(layout.INTERACTIONS, INTERACTIONS)
    subsets = read_frame(layout.SUBSETS, SUBSET_ROWS)
    catalog = build_catalog(
        read_frame(layout.ITEMS, ITEMS), read_frame(KEYWORDS, ITEM_KEYWORDS),
        prompt.title_words, prompt.keywords_per_item,
    )
    rows, selection = choose_rows(params, interactions)
    tiny = interactions[interactions["row"].isin(subsets.loc[subsets["subset"] == "test_tiny", "row"])]
    gold_rows = select_gold_rows(tiny, params.gold.count, prompt.history_items, params.seed)

    client, sampling = teacher_chat(params)

    def verify(chosen, desc: str):
        cases = make_cases(chosen, catalog, template, prompt.history_items)
        return run_verification(cases, client, sampling, params.max_rounds, params.min_reasoning_words, desc,
                                params.ask_verdict)

    keep_label = params.unverified == "keep_label"  # training rows only: a gold trace must reason
    cases = verify(rows, "traces")
    gold = verify(gold_rows, "gold traces")
    table = traces_table(cases, keep_label)
    dropped = 0
    if params.balance_labels:
        table, dropped = balance_labels(table, params.seed)
    metrics = {
        "selection": selection,
        "traces": {
            **verification_stats(cases, params.max_rounds, keep_label),
            "balance_labels": params.balance_labels,
            "dropped_for_balance": dropped,
            "written": len(table),
            "written_by_label": label_counts(table["label"]),
        },
        "gold": verification_stats(gold, params.max_rounds),
        **llm_stage_metrics(client, started),
    }
    with atomic_paths(OUTPUT, GOLD_OUTPUT, METRICS) as (table_tmp, gold_tmp, metrics_tmp):  # all or none
        write_frame(table, table_tmp, TRACES)
        write_frame(traces_table(gold), gold_tmp, TRACES)
        write_json(stamped(metrics, "traces"), metrics_tmp)
    logging.info(
        "traces: kept %d/%d, wrote %d (gold %d/%d), %d calls / %d cache hits, %.1f s",
        metrics["traces"]["kept"], len(cases), len(table), metrics["gold"]["kept"], len(gold),
        metrics["llm"]["calls"], metrics["llm"]["cache_hits"], metrics["stage_seconds"],
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    run_stage(main)
