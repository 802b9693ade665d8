"""Training loop: AdamW, warmup + cosine, gradient accumulation, reasoning-mixed batches, frozen
weights in bf16 (cast once), best checkpoint kept by a validation callback."""
from __future__ import annotations

import math
import time
from typing import Callable, Literal, Sequence

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from tqdm import tqdm

from pipeline.rec import distributed
from pipeline.rec.batching import collate, length_buckets
from pipeline.rec.examples import RecExample
from pipeline.rec.losses import LossParams, rec_loss
from pipeline.rec.model import RecModel, restore_state, trainable_state, use_precision


class TrainParams(BaseModel):
    """One training section of params.yaml (rec.stage1, rec.stage2): the defaults live there."""

    model_config = ConfigDict(extra="forbid")
    train_rows: int = Field(ge=1)  # training rows sampled from the train split
    steps: int = Field(ge=1)  # optimizer steps
    batch_size: int = Field(ge=1)  # rows per micro-batch
    grad_accum: int = Field(ge=1)  # micro-batches per optimizer step
    lr: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    warmup_steps: int = Field(ge=0)
    reasoning_prob: float = Field(ge=0, le=1)  # chance a micro-batch comes from the reasoning set
    eval_every: int = Field(ge=0)  # steps between validation scorings for checkpoint selection (0 = none)
    probe_rows: int = Field(ge=1)  # fixed training rows whose loss is logged before and after training
    dtype: Literal["bfloat16", "float32"]  # frozen weights' precision (use_precision)
    seed: int


class BatchStream:
    """Endless length-bucketed batches of `examples`, reshuffled each pass with the shared rng."""

    def __init__(self, examples: Sequence[RecExample], batch_size: int, rng: np.random.Generator):
        self.examples, self.batch_size, self.rng = list(examples), batch_size, rng
        self.queue: list[list[int]] = []

    def next(self) -> list[RecExample]:
        if not self.queue:
            self.queue = length_buckets([e.length for e in self.examples], self.batch_size, self.rng)
        return [self.examples[i] for i in self.queue.pop()]


def cosine_with_warmup(warmup: int, total: int) -> Callable[[int], float]:
    """LR multiplier: linear warmup to 1 over `warmup` steps, then cosine down to 0 at `total`."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


@torch.no_grad()
def mean_loss(rec: RecModel, examples: Sequence[RecExample], loss_params: LossParams, dtype: str) -> float:
    """Loss of `examples` as one batch (dropout off): the before/after probe of a training run."""
    was_training = rec.training
    rec.eval()
    use_precision(rec, dtype)
    batch = collate(examples, rec.pad_id, with_answers=True)
    loss, _ = rec_loss(rec.hidden_states(batch), rec, batch, loss_params)
    rec.train(was_training)
    return float(loss)


def train_rec_model(
    rec: RecModel,
    train: Sequence[RecExample],
    reasoning: Sequence[RecExample],
    params: TrainParams,
    loss_params: LossParams,
    validate: Callable[[], float] | None = None,
) -> dict:
    """Train `rec`'s trainable parameters in place; with `validate` (higher = better) the best
    checkpoint among evaluations is restored at the end. Returns the training log; with
    evaluations, `best_eval` is the index (into `evals` and the validate calls) of the restored one."""
    torch.manual_seed(params.seed)
    rng = np.random.default_rng(params.seed)
    trainable = [p for p in rec.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("nothing to train: every parameter is frozen")
    optimizer = torch.optim.AdamW(trainable, lr=params.lr, weight_decay=params.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_with_warmup(params.warmup_steps, params.steps))
    streams = {"train": BatchStream(train, params.batch_size, rng)}
    if reasoning and params.reasoning_prob > 0:
        streams["reasoning"] = BatchStream(reasoning, params.batch_size, rng)
    probe = list(train[: params.probe_rows])
    log: dict = {"probe_loss_before": mean_loss(rec, probe, loss_params, params.dtype), "steps": [], "evals": []}
    best, best_state, best_eval = -math.inf, None, None
    started, validation_seconds = time.perf_counter(), 0.0
    rec.train()
    for step in tqdm(range(params.steps), desc="train", leave=False):
        step_log = _optimizer_step(rec, streams, params, loss_params, rng, trainable, optimizer)
        schedule.step()
        log["steps"].append({"step": step + 1, "lr": schedule.get_last_lr()[0], **step_log})
        last = step + 1 == params.steps
        if validate is not None and (last or (params.eval_every and (step + 1) % params.eval_every == 0)):
            validation_started = time.perf_counter()
            value = validate()
            validation_seconds += time.perf_counter() - validation_started
            value = -math.inf if math.isnan(value) else value
            log["evals"].append({"step": step + 1, "selection": value})
            if value >= best:  # ties (all-NaN included) go to the later, longer-trained checkpoint
                best, best_state, best_eval = value, trainable_state(rec), len(log["evals"]) - 1
    if best_state is not None:
        restore_state(rec, best_state)
        log["best_eval"] = best_eval
        log["best_step"] = log["evals"][best_eval]["step"]
    log["validation_seconds"] = validation_seconds  # the validate calls, not in train_seconds
    log["train_seconds"] = time.perf_counter() - started - validation_seconds
    log["probe_loss_after"] = mean_loss(rec, probe, loss_params, params.dtype)
    return log


def _optimizer_step(rec, streams, params, loss_params, rng, trainable, optimizer) -> dict:
    """One optimizer step over `grad_accum` micro-batches, each drawn from the reasoning set with
    probability `reasoning_prob`. Returns the step's mean loss parts and its token count."""
    totals = {"loss": 0.0, "bce": 0.0, "lm": 0.0, "tokens": 0, "reasoning_batches": 0}
    for index in range(params.grad_accum):
        use_reasoning = "reasoning" in streams and rng.random() < params.reasoning_prob
        examples = streams["reasoning" if use_reasoning else "train"].next()
        if not distributed.owns(index):  # under torchrun: another rank's micro-batch (same draws)
            continue
        batch = collate(examples, rec.pad_id, with_answers=True)
        loss, parts = rec_loss(rec.hidden_states(batch), rec, batch, loss_params)
        (loss / params.grad_accum).backward()
        totals["loss"] += float(loss.detach()) / params.grad_accum
        totals["bce"] += parts["bce"] / params.grad_accum
        totals["lm"] += parts["lm"] / params.grad_accum
        totals["tokens"] += int(batch.attention_mask.sum())
        totals["reasoning_batches"] += int(use_reasoning)
    distributed.sum_gradients(trainable)
    torch.nn.utils.clip_grad_norm_(trainable, 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return distributed.sum_over_ranks(totals)
