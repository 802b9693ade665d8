"""Stage hard_scores, in dvc.yaml only while `hard_scores.model` is set (the reference profile): a
trained LLM recommender scores every train row, and traces' hard selection takes the rows it gets
wrong (the reference's source of hard rows; pipeline/hard_scores.py).

Reads data/ingest/interactions.parquet, data/rec/<model>/ and what its prompts read (the selected
CF model's vectors, the keywords). Writes data/predictions/hard_scores.parquet (row, user, item,
score: `traces.hard_scores` must name it) and metrics/hard_scores.json (rows, AUC, UAUC, the rows
on the wrong side of `traces.score_threshold`, seconds)."""
from __future__ import annotations

import time

import torch

from pipeline import layout, schemas
from pipeline.artifacts import atomic_paths, read_frame, write_frame, write_json
from pipeline.errors import BadParams, run_stage
from pipeline.params import load_section
from pipeline.rec.params import RecParams
from pipeline.rec.recommender import load_recommender
from pipeline.hard_scores import (HARD_SCORES, HardScoresParams, TracesKeys, check_scoring_model,
                                  check_traces_reads_them, score_train_rows, scores_summary)
from stages.stamp import stamped

METRICS = layout.metrics("hard_scores")


def main() -> None:
    started = time.perf_counter()
    params = load_section("hard_scores", HardScoresParams)
    traces = load_section("traces", TracesKeys)
    if params.model is None:
        raise BadParams("hard_scores.model: null: nothing to score (dvc.yaml lists this stage only while it is set: "
                        "python -m stages.dvc_yaml --write)")
    check_scoring_model(params.model)
    check_traces_reads_them(params.model, traces)
    rec_params = load_section("rec", RecParams)
    torch.set_num_threads(rec_params.threads)
    interactions = read_frame(layout.INTERACTIONS, schemas.INTERACTIONS)
    recommender = load_recommender(params.model, rec_params)
    scored = score_train_rows(recommender, interactions, rec_params.scoring.batch_size)
    metrics = {"model": params.model, "precision": recommender.precision,
               **scores_summary(scored, interactions, traces.score_threshold),
               "stage_seconds": round(time.perf_counter() - started, 1)}
    with atomic_paths(HARD_SCORES, METRICS) as (scores_tmp, metrics_tmp):  # both or neither
        write_frame(scored, scores_tmp, schemas.PREDICTIONS)
        write_json(stamped(metrics, "hard_scores"), metrics_tmp)
    print(f"hard_scores: {params.model} scored {metrics['rows']} train rows (AUC {metrics['auc']}), "
          f"{metrics['wrong']} on the wrong side of {metrics['score_threshold']} -> {HARD_SCORES}, {METRICS}")


if __name__ == "__main__":
    run_stage(main)
