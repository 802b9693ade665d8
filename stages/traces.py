"""Stage `traces`: verified reasoning traces on selected training rows, and reference traces on a
fixed test_tiny sample (for explanation quality).

Reads data/ingest/{interactions,items,subsets}.parquet, data/predictions/<cf.model>.parquet (for
selection = hard) and params `traces`, `cf.model`, `llm`; writes data/traces/traces.parquet,
data/traces/reference_traces.parquet and metrics/traces.json.
"""
from __future__ import annotations

import logging
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from pipeline.artifacts import read_frame, write_frame, write_json
from pipeline.schemas import INTERACTIONS, ITEMS, PREDICTIONS, SUBSET_ROWS, TRACES
from pipeline.traces.prompt import describe_items
from pipeline.traces.selection import score_threshold, select_reference_rows, select_trace_rows
from pipeline.traces.verification import make_cases, run_verification, traces_table, verification_stats
from stages.params import CFChoice, load_section
from stages.teacher import TeacherParams, llm_stage_metrics, teacher_chat

INGEST = "data/ingest"
OUTPUT = "data/traces/traces.parquet"
REFERENCE_OUTPUT = "data/traces/reference_traces.parquet"
METRICS = "metrics/traces.json"


class ReferenceParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(8, ge=0)
    history: int = Field(10, ge=1)


class TraceParams(TeacherParams):
    selection: Literal["hard", "random", "per_label"] = "hard"
    count: int = Field(24, ge=0)
    score_threshold: float | None = None
    min_history: int = Field(3, ge=0)
    history_items: int = Field(10, ge=0)
    max_rounds: int = Field(3, ge=1)
    max_tokens: int = Field(128, ge=1)
    min_reasoning_words: int = Field(3, ge=1)
    seed: int = 2026
    reference: ReferenceParams = ReferenceParams()


def choose_rows(params: TraceParams, interactions, cf_model: str) -> tuple:
    """(selected training rows, selection info for the metrics)."""
    train = interactions[interactions["split"] == "train"]
    info = {"mode": params.selection, "train_rows": len(train)}
    predictions, threshold = None, None
    if params.selection == "hard":
        path = f"data/predictions/{cf_model}.parquet"
        predictions = read_frame(path, PREDICTIONS)
        threshold = score_threshold(predictions["score"], params.score_threshold)
        info.update(cf_model=cf_model, score_threshold=threshold)
    rows = select_trace_rows(
        train, params.selection, params.count, params.seed, params.min_history,
        predictions, threshold, predictions_path=f"data/predictions/{cf_model}.parquet",
    )
    info["selected"] = len(rows)
    return rows, info


def main() -> None:
    started = time.perf_counter()
    params = load_section("traces", TraceParams)
    cf_model = load_section("cf", CFChoice).model
    interactions = read_frame(f"{INGEST}/interactions.parquet", INTERACTIONS)
    subsets = read_frame(f"{INGEST}/subsets.parquet", SUBSET_ROWS)
    names = describe_items(read_frame(f"{INGEST}/items.parquet", ITEMS))
    rows, selection = choose_rows(params, interactions, cf_model)
    tiny = interactions[interactions["row"].isin(subsets.loc[subsets["subset"] == "test_tiny", "row"])]
    reference_rows = select_reference_rows(tiny, params.reference.count, params.reference.history, params.seed)

    client, sampling = teacher_chat(params)
    verify = lambda cases, desc: run_verification(  # noqa: E731
        cases, client, sampling, params.max_rounds, params.min_reasoning_words, desc
    )
    cases = verify(make_cases(rows, names, params.history_items), "traces")
    reference = verify(make_cases(reference_rows, names, params.reference.history), "reference traces")
    write_frame(traces_table(cases), OUTPUT, TRACES)
    write_frame(traces_table(reference), REFERENCE_OUTPUT, TRACES)

    metrics = {
        "selection": selection,
        "traces": verification_stats(cases, params.max_rounds),
        "reference": verification_stats(reference, params.max_rounds),
        **llm_stage_metrics(client, started),
    }
    write_json(metrics, METRICS)
    logging.info(
        "traces: kept %d/%d (reference %d/%d), %d calls / %d cache hits, %.1f s",
        metrics["traces"]["kept"], len(cases), metrics["reference"]["kept"], len(reference),
        metrics["llm"]["calls"], metrics["llm"]["cache_hits"], metrics["stage_seconds"],
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
