"""The student's training on the shared loop (pipeline/rec/training.py): the rank task's packs
(one user prompt, then the positive and its sampled negatives as targets) are the label
micro-batches, one pass; each rationale task with a weight adds its micro-batches among them
(its share of all micro-batches is its normalised weight). So a student with rationale tasks sees
exactly the rank batches, in the same order, that the ranking-only ablation sees. BCE + LM on rank
rows, LM only on rationale rows (pipeline/rec/losses.py, rationale rows marked as multi-token
answers whose BCE weight is 0)."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from pipeline.rec.params import LossParams
from pipeline.rec.model import RecModel
from pipeline.rec.packing import Pack
from pipeline.rec.precision import resolve_precision
from pipeline.rec.training import MicroBatch, label_batches, label_rows, loop_params, train_loop, with_extras
from pipeline.rdrec.params import StudentTraining


def task_weights(weights: Mapping[str, float], pools: Mapping[str, Sequence[Pack]]) -> dict[str, float]:
    """The variant's weights over the tasks that have rows, normalised; a task with weight > 0
    but no rows (no usable rationales) is an error, never a silently different student."""
    empty = [task for task, weight in weights.items() if weight > 0 and not pools.get(task)]
    if empty:
        raise ValueError(f"tasks {empty} have a weight but no training rows")
    kept = {task: weight for task, weight in weights.items() if weight > 0}
    total = sum(kept.values())
    return {task: weight / total for task, weight in sorted(kept.items())}


def student_schedule(pools: Mapping[str, Sequence[Pack]], probabilities: Mapping[str, float],
                     params: StudentTraining) -> list[MicroBatch]:
    """One pass over the rank packs (rng `seed`), the other tasks' micro-batches added among them."""
    labels = label_batches(pools["rank"], params.batch_size, None, np.random.default_rng(params.seed))
    extras = {task: (pools[task], share) for task, share in probabilities.items() if task != "rank"}
    schedule = with_extras(labels, extras, params.batch_size, np.random.default_rng([params.seed, 1]))
    return [MicroBatch("rank" if m.kind == "labels" else m.kind, m.packs) for m in schedule]


def train_student(
    rec: RecModel, pools: Mapping[str, Sequence[Pack]], weights: Mapping[str, float], params: StudentTraining
) -> dict:
    """Train `rec`'s trainable parameters in place, one micro-batch per step. Returns the shared
    loop's log plus per-task batch / answer / token counts and the rank rows seen."""
    probabilities = task_weights(weights, pools)
    schedule = student_schedule(pools, probabilities, params)
    loss_params = LossParams(bce_weight_single=params.rank_bce_weight, bce_weight_multi=0.0)
    precision = resolve_precision(params.dtype, rec.device)
    log = train_loop(rec, schedule, loop_params(params, precision), loss_params)
    counts = {task: {"batches": 0, "answers": 0, "tokens": 0} for task in probabilities}
    for micro, step in zip(schedule, log["steps"]):
        counts[micro.kind]["batches"] += 1
        counts[micro.kind]["answers"] += step["answers"]
        counts[micro.kind]["tokens"] += step["tokens"]
    rank_rows = label_rows(schedule, "rank")
    return {**log, "precision": precision, "task_probabilities": probabilities, "tasks": counts,
            "rank_answers": len(rank_rows), "rank_rows": len(set(rank_rows))}
