"""The student's multi-task loop: each micro-batch comes from one task, drawn by the variant's task
weights; BCE + LM on rank rows, LM only on rationale rows (pipeline/rec/losses.py, with the
rationale rows marked as multi-token answers whose BCE weight is 0)."""
from __future__ import annotations

import time
from typing import Mapping, Sequence

import numpy as np
import torch
from tqdm import tqdm

from pipeline.rec.batching import collate
from pipeline.rec.examples import RecExample
from pipeline.rec.losses import LossParams, rec_loss
from pipeline.rec.model import RecModel
from pipeline.rec.training import BatchStream, cosine_with_warmup
from pipeline.rdrec.params import StudentTraining


def task_weights(weights: Mapping[str, float], pools: Mapping[str, Sequence[RecExample]]) -> dict[str, float]:
    """The variant's weights over the tasks that have rows, normalised; a task with weight > 0
    but no rows (no usable rationales) is an error, never a silently different student."""
    empty = [task for task, weight in weights.items() if weight > 0 and not pools.get(task)]
    if empty:
        raise ValueError(f"tasks {empty} have a weight but no training rows")
    kept = {task: weight for task, weight in weights.items() if weight > 0}
    total = sum(kept.values())
    return {task: weight / total for task, weight in sorted(kept.items())}


def train_student(
    rec: RecModel, pools: Mapping[str, Sequence[RecExample]], weights: Mapping[str, float], params: StudentTraining
) -> dict:
    """Train `rec`'s trainable parameters in place for `params.steps` steps of one micro-batch
    each. Returns the log: per-step loss parts and task, per-task batch/row/token counts, seconds."""
    torch.manual_seed(params.seed)
    rng = np.random.default_rng(params.seed)
    probabilities = task_weights(weights, pools)
    tasks = list(probabilities)
    streams = {task: BatchStream(pools[task], params.batch_size, rng) for task in tasks}
    loss_params = LossParams(bce_weight_single=params.rank_bce_weight, bce_weight_multi=0.0)
    trainable = [p for p in rec.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=params.lr, weight_decay=params.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_with_warmup(params.warmup_steps, params.steps))
    counts = {task: {"batches": 0, "rows": 0, "tokens": 0} for task in tasks}
    steps = []
    started = time.perf_counter()
    rec.train()
    for step in tqdm(range(params.steps), desc="rdrec train", leave=False):
        task = tasks[int(rng.choice(len(tasks), p=[probabilities[t] for t in tasks]))]
        examples = streams[task].next()
        batch = collate(examples, rec.pad_id, with_answers=True)
        loss, parts = rec_loss(rec.hidden_states(batch), rec, batch, loss_params)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        schedule.step()
        tokens = int(batch.attention_mask.sum())
        counts[task]["batches"] += 1
        counts[task]["rows"] += len(examples)
        counts[task]["tokens"] += tokens
        steps.append({"step": step + 1, "task": task, "loss": float(loss.detach()), **parts, "tokens": tokens})
    return {"task_probabilities": probabilities, "tasks": counts, "steps": steps,
            "train_seconds": time.perf_counter() - started}
