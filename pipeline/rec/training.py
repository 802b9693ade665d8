"""The one training loop of every LLM trainer here (recommender stages, LoRA experts, RDRec
students): AdamW, warmup + cosine, gradient accumulation, a fixed schedule of micro-batches of
packs (packing.py), the best checkpoint kept by an optional validation callback.

A schedule is built before the loop: the label micro-batches (one pass over the packs, or a given
count), then extra micro-batches (reasoning traces, a student's other tasks) inserted among them
with their own random stream. So a run with traces sees exactly the label batches, in the same
order, that the same run without traces sees: the extras are added, never substituted."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from pipeline.rec import distributed
from pipeline.rec.batching import RecBatch, collate_packs, length_buckets
from pipeline.rec.losses import rec_loss
from pipeline.rec.model import RecModel, restore_state, trainable_state, use_precision
from pipeline.rec.packing import Pack
from pipeline.rec.params import TrainParams
from pipeline.rec.precision import resolve_precision


@dataclass
class MicroBatch:
    kind: str  # "labels", "reasoning", or a student task's name
    packs: list[Pack]


def label_batches(packs: Sequence[Pack], batch_size: int, count: int | None, rng: np.random.Generator
                  ) -> list[list[Pack]]:
    """`count` length-bucketed micro-batches of `packs` (None: one pass), reshuffled every pass."""
    batches: list[list[Pack]] = []
    target = count if count is not None else math.ceil(len(packs) / batch_size)
    while len(batches) < target:
        order = length_buckets([p.length for p in packs], batch_size, rng)
        batches += [[packs[i] for i in index] for index in order]
    return batches[:target]


def with_extras(labels: Sequence[list[Pack]], extras: dict[str, tuple[Sequence[Pack], float]], batch_size: int,
                rng: np.random.Generator) -> list[MicroBatch]:
    """The label micro-batches in their order, with each extra kind's micro-batches inserted at
    random places: kind -> (packs, share), a share of s adds round(len(labels) * s / (1 - s_total))
    micro-batches of that kind (drawn in passes over its packs), so extras are s of the whole."""
    schedule = [MicroBatch("labels", list(b)) for b in labels]
    total_share = sum(share for packs, share in extras.values() if packs)
    for kind, (packs, share) in sorted(extras.items()):
        if not packs or share <= 0:
            continue
        count = round(len(labels) * share / (1 - total_share))
        for batch in label_batches(packs, batch_size, count, rng):
            schedule.insert(int(rng.integers(0, len(schedule) + 1)), MicroBatch(kind, batch))
    return schedule


def cosine_with_warmup(warmup: int, total: int) -> Callable[[int], float]:
    """LR multiplier: linear warmup to 1 over `warmup` steps, then cosine down to 0 at `total`."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


@dataclass
class LoopParams:
    lr: float
    weight_decay: float
    warmup_steps: int
    grad_accum: int
    dtype: str
    seed: int
    eval_every: int = 0


Forward = Callable[[RecModel, RecBatch, list[Pack]], torch.Tensor]  # -> (B, T, H) hidden states


def body_forward(rec: RecModel, batch: RecBatch, packs: list[Pack]) -> torch.Tensor:
    return rec.hidden_states(batch)


@torch.no_grad()
def mean_loss(rec: RecModel, packs: Sequence[Pack], loss_params: LossParams, dtype: str,
              forward: Forward = body_forward) -> float:
    """Loss of `packs` as one batch (dropout off): the before/after probe of a training run."""
    was_training = rec.training
    rec.eval()
    use_precision(rec, dtype)
    batch = collate_packs(packs, rec.pad_id)
    loss, _ = rec_loss(forward(rec, batch, list(packs)), rec, batch, loss_params)
    rec.train(was_training)
    return float(loss)


def train_loop(
    rec: RecModel,
    schedule: Sequence[MicroBatch],
    params: LoopParams,
    loss_params: LossParams,
    forward: Forward = body_forward,
    validate: Callable[[], float] | None = None,
    probe: Sequence[Pack] = (),
) -> dict:
    """Train `rec`'s trainable parameters in place over `schedule`, `grad_accum` micro-batches per
    optimizer step. With `validate` (higher = better; every `eval_every` steps and at the end) the
    best checkpoint is restored. Returns the log: per step its loss parts, tokens, answers and
    kinds; `best_eval` (with evaluations); train_seconds (validation apart)."""
    torch.manual_seed(params.seed)
    use_precision(rec, params.dtype)
    trainable = [p for p in rec.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("nothing to train: every parameter is frozen")
    steps = math.ceil(len(schedule) / params.grad_accum)
    optimizer = torch.optim.AdamW(trainable, lr=params.lr, weight_decay=params.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_with_warmup(params.warmup_steps, steps))
    log: dict = {"steps": [], "evals": []}
    if probe:
        log["probe_loss_before"] = mean_loss(rec, probe, loss_params, params.dtype, forward)
    best, best_state = -math.inf, None
    started, validation_seconds = time.perf_counter(), 0.0
    rec.train()
    for step in tqdm(range(steps), desc="train", leave=False):
        group = schedule[step * params.grad_accum : (step + 1) * params.grad_accum]
        step_log = _optimizer_step(rec, group, loss_params, forward, trainable, optimizer)
        scheduler.step()
        log["steps"].append({"step": step + 1, "lr": scheduler.get_last_lr()[0], **step_log})
        last = step + 1 == steps
        if validate is not None and (last or (params.eval_every and (step + 1) % params.eval_every == 0)):
            clock = time.perf_counter()
            value = validate()
            validation_seconds += time.perf_counter() - clock
            value = -math.inf if math.isnan(value) else value
            log["evals"].append({"step": step + 1, "selection": value})
            if value >= best:  # ties (all-NaN included) go to the later, longer-trained checkpoint
                best, best_state, log["best_eval"] = value, trainable_state(rec), len(log["evals"]) - 1
    if best_state is not None:
        restore_state(rec, best_state)
        log["best_step"] = log["evals"][log["best_eval"]]["step"]
    log["validation_seconds"] = validation_seconds  # the validate calls, not in train_seconds
    log["train_seconds"] = time.perf_counter() - started - validation_seconds
    if probe:
        log["probe_loss_after"] = mean_loss(rec, probe, loss_params, params.dtype, forward)
    return log


def _optimizer_step(rec, group: Sequence[MicroBatch], loss_params, forward, trainable, optimizer) -> dict:
    """One optimizer step over the micro-batches of `group`. Returns the step's mean loss parts,
    its token and answer counts, and how many micro-batches of each kind it had."""
    totals: dict = {"loss": 0.0, "bce": 0.0, "lm": 0.0, "tokens": 0, "answers": 0, "kinds": {}}
    for index, micro in enumerate(group):
        totals["kinds"][micro.kind] = totals["kinds"].get(micro.kind, 0) + 1
        if not distributed.owns(index):  # under torchrun: another rank's micro-batch (same schedule)
            continue
        batch = collate_packs(micro.packs, rec.pad_id)
        loss, parts = rec_loss(forward(rec, batch, micro.packs), rec, batch, loss_params)
        (loss / len(group)).backward()
        totals["loss"] += float(loss.detach()) / len(group)
        totals["bce"] += parts["bce"] / len(group)
        totals["lm"] += parts["lm"] / len(group)
        totals["tokens"] += int(batch.attention_mask.sum())
        totals["answers"] += int(batch.labels.shape[0])
    kinds = totals.pop("kinds")
    distributed.sum_gradients(trainable)
    torch.nn.utils.clip_grad_norm_(trainable, 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return {**distributed.sum_over_ranks(totals), "kinds": dict(sorted(kinds.items()))}


def training_schedule(packs: Sequence[Pack], traces: Sequence[Pack], params: TrainParams) -> list[MicroBatch]:
    """A recommender stage's schedule: label micro-batches (rng `seed`), trace micro-batches added
    among them (rng `[seed, 1]`), so the label batches do not depend on whether there are traces."""
    count = params.steps * params.grad_accum if params.steps is not None else None
    labels = label_batches(packs, params.batch_size, count, np.random.default_rng(params.seed))
    extras = {"reasoning": (traces, params.reasoning_share)}
    return with_extras(labels, extras, params.batch_size, np.random.default_rng([params.seed, 1]))


def train_rec_model(
    rec: RecModel, packs: Sequence[Pack], traces: Sequence[Pack], params: TrainParams, loss_params: LossParams,
    validate: Callable[[], float] | None = None, probe: Sequence[Pack] = (),
) -> tuple[dict, list[MicroBatch]]:
    """Train a recommender stage's trainable parameters on `packs` and `traces` (train_loop; the
    dtype resolved on the model's device). Returns (log, the schedule it trained on)."""
    schedule = training_schedule(packs, traces, params)
    precision = resolve_precision(params.dtype, rec.device)
    loop = LoopParams(params.lr, params.weight_decay, params.warmup_steps, params.grad_accum, precision,
                      params.seed, params.eval_every)
    return train_loop(rec, schedule, loop, loss_params, validate=validate, probe=probe), schedule


def label_rows(schedule: Sequence[MicroBatch], kind: str = "labels") -> list[int]:
    """Interaction rows of every answer in the `kind` micro-batches, in schedule order."""
    return [row for micro in schedule if micro.kind == kind for pack in micro.packs for row in pack.rows]
