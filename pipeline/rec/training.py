"""The one training loop of every LLM trainer here (recommender stages, LoRA experts, RDRec
students): AdamW, warmup + cosine, gradient accumulation, a fixed schedule of micro-batches of
packs (packing.py), the best checkpoint kept by an optional validation callback, optional early
stopping.

A schedule is built before the loop: the label micro-batches (one pass over the packs, or a given
count), then extra micro-batches (reasoning traces, a student's other tasks) inserted among them
with their own random stream. So a run with traces sees exactly the label batches, in the same
order, that the same run without traces sees: the extras are added, never substituted.

Epochs (rec.stage<N>.epochs, experts.train.epochs) follow the reference runner (ThinkRec / CoLLM
`minigpt4/runners/runner_base.py`): the schedule is `epochs` x `steps_per_epoch` label steps drawn
in passes over the packs (each pass reshuffled, an epoch need not end with a pass: the reference's
endless loader), split into `epochs` equal runs of optimizer steps; valid_small is scored after
each, the best kept, and with `patience` the run stops after that many epochs without a new best.
The learning rate is the reference's `linear_warmup_cosine_lr` (reference_cosine below)."""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from tqdm import tqdm

from pipeline.rec import distributed
from pipeline.rec.batching import RecBatch, collate_packs, length_buckets
from pipeline.rec.losses import rec_loss
from pipeline.rec.model import RecModel, restore_state, trainable_state, use_precision
from pipeline.rec.packing import Pack
from pipeline.rec.params import EpochParams, OptimizerParams, TrainParams
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


def cosine_with_warmup(warmup: int, total: int, floor: float = 0.0) -> Callable[[int], float]:
    """LR multiplier: linear warmup to 1 over `warmup` steps, then cosine down to `floor` at `total`."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return floor + (1 - floor) * cosine if floor else cosine

    return factor


def reference_cosine(lr: float, min_lr: float, warmup_lr: float | None, warmup: int, epoch_steps: int,
                     epochs: int) -> Callable[[int], float]:
    """LR multiplier of optimizer step t (0-based) under epochs: the reference's
    `linear_warmup_cosine_lr` (ThinkRec / CoLLM `minigpt4/common/optims.py:58-113`), set before
    step t, with i = t mod epoch_steps and T = epochs x epoch_steps:
      t < warmup: min(lr, w + (lr - w) i / warmup), w = warmup_lr (None: lr)
      else:       min_lr + (lr - min_lr) (1 + cos(pi t / T)) / 2
    The cosine runs from step 0 over the whole planned run (not from the warmup's end), so it does
    not reach min_lr and an early stop leaves it higher; the warmup counts i, the step within the
    epoch, so a warmup longer than an epoch restarts from w at each epoch until step `warmup`
    (CoLLM's warmup 200 at 50 steps per epoch does)."""
    start = lr if warmup_lr is None else warmup_lr
    total = epochs * epoch_steps

    def factor(step: int) -> float:
        if step < warmup:
            value = min(lr, start + (lr - start) * (step % epoch_steps) / max(warmup, 1))
        else:
            value = min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * step / total))
        return value / lr

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
    epochs: int | None = None  # the schedule in this many equal runs of steps, validated after each
    patience: int | None = None  # stop after this many validations in a row without a new best
    min_lr: float = 0.0  # the cosine's end
    warmup_lr: float | None = None  # epochs: the warmup's first LR (None: lr)

    def lr_factor(self, steps: int) -> Callable[[int], float]:
        """The LR multiplier of each of `steps` optimizer steps."""
        if self.epochs is None:
            return cosine_with_warmup(self.warmup_steps, steps, self.min_lr / self.lr)
        return reference_cosine(self.lr, self.min_lr, self.warmup_lr, self.warmup_steps,
                                epoch_steps(steps, self.epochs), self.epochs)


# the loop's schedule keys a section may have: a recommender stage's (TrainParams) has them all, the
# experts' (EpochParams) all but eval_every; the students' none: one micro-batch per step, no
# validation (LoopParams' defaults)
SCHEDULE_KEYS = ("eval_every", "epochs", "patience", "min_lr", "warmup_lr")


def section_value(params: OptimizerParams, key: str, absent):
    """`params.<key>`, or `absent` where the section has no such key (only a recommender stage's
    has steps, grad_accum and eval_every)."""
    return getattr(params, key) if key in type(params).model_fields else absent


def loop_params(params: OptimizerParams, precision: str) -> LoopParams:
    """The loop's settings from any training section: its optimiser keys, `precision` (its dtype
    resolved on the model's device), and the schedule keys the section has."""
    fields = type(params).model_fields
    return LoopParams(params.lr, params.weight_decay, params.warmup_steps, section_value(params, "grad_accum", 1),
                      precision, params.seed, **{key: getattr(params, key) for key in SCHEDULE_KEYS if key in fields})


def epoch_steps(steps: int, epochs: int) -> int:
    """Optimizer steps per epoch when a schedule of `steps` steps is cut into `epochs` epochs
    (the last one shorter when they do not divide)."""
    return math.ceil(steps / epochs)


Forward = Callable[[RecModel, RecBatch, list[Pack]], torch.Tensor]  # -> (B, T, H) hidden states
Validate = Callable[[], "float | Sequence[float]"]  # the selection value, or (selection, *watched)
# a micro-batch kind's own loss (hidden, rec, batch, packs) -> (loss, {"bce", "lm"}), instead of rec_loss
TaskLoss = Callable[[torch.Tensor, RecModel, RecBatch, list[Pack]], tuple[torch.Tensor, dict[str, float]]]


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
    validate: Validate | None = None,
    probe: Sequence[Pack] = (),
    task_losses: Mapping[str, TaskLoss] | None = None,
) -> dict:
    """Train `rec`'s trainable parameters in place over `schedule`, `grad_accum` micro-batches per
    optimizer step (a micro-batch whose kind is in `task_losses` takes that loss, the others
    rec_loss). With `validate` (every `eval_every` steps, or after every epoch, and at the end)
    the best checkpoint is restored: validate returns the selection value (higher = better), or a
    tuple (selection, *watched) whose other values also count as progress for `patience` when
    they reach a new best. Returns the log: per step its loss parts, tokens, answers and kinds;
    `best_eval` (with evaluations); `epochs` (with epochs or patience); train_seconds (validation
    apart). An early stop ends the steps: len(log["steps"]) is how many were trained."""
    torch.manual_seed(params.seed)
    use_precision(rec, params.dtype)
    trainable = [p for p in rec.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("nothing to train: every parameter is frozen")
    steps = math.ceil(len(schedule) / params.grad_accum)
    if params.warmup_steps >= steps:  # known only now (one pass over however many packs there are)
        print(f"warning: warmup_steps {params.warmup_steps} is not shorter than this run's {steps} optimizer steps: "
              f"the learning rate never leaves its warmup (fewer warmup steps, or more rows)", file=sys.stderr)
    every = epoch_steps(steps, params.epochs) if params.epochs is not None else params.eval_every
    optimizer = torch.optim.AdamW(trainable, lr=params.lr, weight_decay=params.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, params.lr_factor(steps))
    log: dict = {"steps": [], "evals": []}
    if probe:
        log["probe_loss_before"] = mean_loss(rec, probe, loss_params, params.dtype, forward)
    best, best_state, progress = -math.inf, None, Progress(params.patience)
    started, validation_seconds = time.perf_counter(), 0.0
    rec.train()
    for step in tqdm(range(steps), desc="train", leave=False):
        group = schedule[step * params.grad_accum : (step + 1) * params.grad_accum]
        step_log = _optimizer_step(rec, group, loss_params, forward, trainable, optimizer, task_losses or {})
        scheduler.step()
        log["steps"].append({"step": step + 1, "lr": scheduler.get_last_lr()[0], **step_log})
        last = step + 1 == steps
        if not (last or (every and (step + 1) % every == 0)):
            continue
        if validate is not None:
            clock = time.perf_counter()
            values = _validation_values(validate())
            validation_seconds += time.perf_counter() - clock
            value = values[0]
            log["evals"].append({"step": step + 1, "selection": value}
                                | ({"epoch": math.ceil((step + 1) / every)} if params.epochs else {}))
            if value >= best:  # ties (all-NaN included) go to the later, longer-trained checkpoint
                best, best_state, log["best_eval"] = value, trainable_state(rec), len(log["evals"]) - 1
            progress.record(values)
        if params.patience is not None and not last and progress.stop():
            break
    if params.epochs is not None or params.patience is not None:
        log["epochs"] = {"planned": params.epochs, "steps_per_epoch": every if params.epochs else None,
                         "steps_planned": steps, "stopped_early": len(log["steps"]) < steps}
    if best_state is not None:
        restore_state(rec, best_state)
        log["best_step"] = log["evals"][log["best_eval"]]["step"]
    log["validation_seconds"] = validation_seconds  # the validate calls, not in train_seconds
    log["train_seconds"] = time.perf_counter() - started - validation_seconds
    if probe:
        log["probe_loss_after"] = mean_loss(rec, probe, loss_params, params.dtype, forward)
    return log


class Progress:
    """Early stopping's count of validations in a row without a new best of any watched value
    (strictly above its best so far, as the reference's `>`: runner_base.py:457-479). The count is
    agreed over ranks (only rank 0 validates) at each validation point."""

    def __init__(self, patience: int | None):
        self.patience, self.bests, self.stale = patience, (), 0

    def record(self, values: tuple[float, ...]) -> None:
        bests = self.bests or (-math.inf,) * len(values)
        self.stale = 0 if any(v > b for v, b in zip(values, bests)) else self.stale + 1
        self.bests = tuple(map(max, values, bests))

    def stop(self) -> bool:
        stale = distributed.sum_over_ranks({"stale": self.stale})["stale"]  # rank 0's count (the others: 0)
        return self.patience is not None and stale >= self.patience


def _validation_values(result: float | Sequence[float]) -> tuple[float, ...]:
    """validate's result as a tuple of floats, NaN (undefined metric) as -inf."""
    values = (result,) if isinstance(result, (int, float)) else tuple(result)
    return tuple(-math.inf if math.isnan(v) else float(v) for v in values)


def _optimizer_step(rec, group: Sequence[MicroBatch], loss_params, forward, trainable, optimizer,
                    task_losses: Mapping[str, TaskLoss]) -> dict:
    """One optimizer step over the micro-batches of `group`. Returns the step's mean loss parts,
    its token and answer counts, and how many micro-batches of each kind it had."""
    totals: dict = {"loss": 0.0, "bce": 0.0, "lm": 0.0, "tokens": 0, "answers": 0, "kinds": {}}
    for index, micro in enumerate(group):
        totals["kinds"][micro.kind] = totals["kinds"].get(micro.kind, 0) + 1
        if not distributed.owns(index):  # under torchrun: another rank's micro-batch (same schedule)
            continue
        batch = collate_packs(micro.packs, rec.pad_id)
        hidden = forward(rec, batch, micro.packs)
        own = task_losses.get(micro.kind)
        loss, parts = own(hidden, rec, batch, micro.packs) if own else rec_loss(hidden, rec, batch, loss_params)
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


def label_steps(packs: Sequence[Pack], params: EpochParams) -> int | None:
    """A section's label optimizer steps: `steps` (None, or a section without it: one pass over the
    packs), or under epochs `epochs` x `steps_per_epoch` (None: one pass, in whole optimizer steps)."""
    if params.epochs is None:
        return section_value(params, "steps", None)
    one_pass = math.ceil(math.ceil(len(packs) / params.batch_size) / section_value(params, "grad_accum", 1))
    return params.epochs * (params.steps_per_epoch or one_pass)


def training_schedule(packs: Sequence[Pack], traces: Sequence[Pack], params: EpochParams) -> list[MicroBatch]:
    """The schedule of a recommender stage or an expert (a section with reasoning_share): label
    micro-batches (rng `seed`), trace micro-batches added among them (rng `[seed, 1]`), so the
    label batches do not depend on whether there are traces."""
    steps = label_steps(packs, params)
    count = steps * section_value(params, "grad_accum", 1) if steps is not None else None
    labels = label_batches(packs, params.batch_size, count, np.random.default_rng(params.seed))
    extras = {"reasoning": (traces, params.reasoning_share)}
    return with_extras(labels, extras, params.batch_size, np.random.default_rng([params.seed, 1]))


def train_rec_model(
    rec: RecModel, packs: Sequence[Pack], traces: Sequence[Pack], params: TrainParams, loss_params: LossParams,
    validate: Validate | None = None, probe: Sequence[Pack] = (),
) -> tuple[dict, list[MicroBatch]]:
    """Train a recommender stage's trainable parameters on `packs` and `traces` (train_loop; the
    dtype resolved on the model's device). Returns (log, the schedule it trained on: all of it,
    or up to an early stop)."""
    schedule = training_schedule(packs, traces, params)
    precision = resolve_precision(params.dtype, rec.device)
    log = train_loop(rec, schedule, loop_params(params, precision), loss_params, validate=validate, probe=probe)
    return log, schedule[: len(log["steps"]) * params.grad_accum]


def label_rows(schedule: Sequence[MicroBatch], kind: str = "labels") -> list[int]:
    """Interaction rows of every answer in the `kind` micro-batches, in schedule order."""
    return [row for micro in schedule if micro.kind == kind for pack in micro.packs for row in pack.rows]
