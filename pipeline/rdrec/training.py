"""The student's training on the shared loop (pipeline/rec/training.py): the rank task's packs
(one user prompt, then the positive and its sampled negatives as targets) are the label
micro-batches, one pass; every other task with a weight adds round(rank batches x its weight / the
rank weight) micro-batches among them, drawn in passes over its rows. The `next` batches are placed
first (rng [seed, 2]), then the rationale tasks' (rng [seed, 1]): so a student with rationale tasks
sees exactly the rank and next batches, in the same order, that the ablation without them sees.
BCE + LM on rank rows, LM only on rationale rows (pipeline/rec/losses.py, rationale rows marked as
multi-token answers whose BCE weight is 0), cross-entropy over the catalogue on next rows
(next_item.py)."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from pipeline.rec.params import LossParams
from pipeline.rec.model import RecModel
from pipeline.rec.packing import Pack
from pipeline.rec.precision import resolve_precision
from pipeline.rec.training import MicroBatch, label_batches, label_rows, loop_params, train_loop
from pipeline.rdrec.next_item import NextItemHead
from pipeline.rdrec.params import RATIONALE_TASKS, StudentTraining


def task_weights(weights: Mapping[str, float], pools: Mapping[str, Sequence[Pack]]) -> dict[str, float]:
    """The variant's weights over the tasks that have rows, normalised; a task with weight > 0
    but no rows (no usable rationales) is an error, never a silently different student."""
    empty = [task for task, weight in weights.items() if weight > 0 and not pools.get(task)]
    if empty:
        raise ValueError(f"tasks {empty} have a weight but no training rows")
    kept = {task: weight for task, weight in weights.items() if weight > 0}
    total = sum(kept.values())
    return {task: weight / total for task, weight in sorted(kept.items())}


def student_schedule(pools: Mapping[str, Sequence[Pack]], weights: Mapping[str, float],
                     params: StudentTraining) -> list[MicroBatch]:
    """One pass over the rank packs (rng `seed`), the next task's micro-batches inserted among them
    (rng [seed, 2]), then the rationale tasks' (rng [seed, 1]); insertion keeps the order of what
    is already there. A task's count is the rank batches x its weight / the rank weight, from the
    weights as written (no normalised float can then round two variants' next batches apart)."""
    ranks = label_batches(pools["rank"], params.batch_size, None, np.random.default_rng(params.seed))
    schedule = [MicroBatch("rank", batch) for batch in ranks]
    for stream, tasks in ((2, ("next",)), (1, RATIONALE_TASKS)):
        rng = np.random.default_rng([params.seed, stream])
        for task in sorted(t for t in tasks if weights.get(t, 0) > 0):
            count = round(len(ranks) * weights[task] / weights["rank"])
            for batch in label_batches(pools[task], params.batch_size, count, rng):
                schedule.insert(int(rng.integers(0, len(schedule) + 1)), MicroBatch(task, batch))
    return schedule


def train_student(
    rec: RecModel, pools: Mapping[str, Sequence[Pack]], weights: Mapping[str, float], params: StudentTraining,
    head: NextItemHead,
) -> dict:
    """Train `rec`'s trainable parameters in place, one micro-batch per step (`head` scores the
    next micro-batches). Returns the shared loop's log plus the normalised weights, each task's
    share of the micro-batches actually trained, per-task batch / answer / token counts and the
    rank rows seen."""
    probabilities = task_weights(weights, pools)
    schedule = student_schedule(pools, weights, params)
    loss_params = LossParams(bce_weight_single=params.rank_bce_weight, bce_weight_multi=0.0)
    precision = resolve_precision(params.dtype, rec.device)
    log = train_loop(rec, schedule, loop_params(params, precision), loss_params, task_losses={"next": head.loss})
    counts = {task: {"batches": 0, "answers": 0, "tokens": 0} for task in probabilities}
    for micro, step in zip(schedule, log["steps"]):
        counts[micro.kind]["batches"] += 1
        counts[micro.kind]["answers"] += step["answers"]
        counts[micro.kind]["tokens"] += step["tokens"]
    rank_rows = label_rows(schedule, "rank")
    shares = {task: round(count["batches"] / max(len(schedule), 1), 4) for task, count in counts.items()}
    return {**log, "precision": precision, "task_weights": probabilities, "task_shares": shares, "tasks": counts,
            "rank_answers": len(rank_rows), "rank_rows": len(set(rank_rows))}
