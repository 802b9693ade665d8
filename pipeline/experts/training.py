"""Training one LoRA expert: ThinkRec's model (stage-1 LoRA, stage-2 projector, both frozen) with
only the LoRA of the top `upper` layers trainable, on one cluster's rows and traces.

Only the top layers change, so the lower layers' output for a row is fixed: it is computed once
per row (eval mode) and each step runs the top layers only (`cached=True`). `cached=False` runs
the whole body every step (the same loss; kept for the benchmark's comparison)."""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from pipeline.experts.params import ExpertTrainParams
from pipeline.rec.batching import RecBatch, collate, length_buckets
from pipeline.rec.examples import RecExample
from pipeline.rec.losses import LossParams, rec_loss
from pipeline.rec.model import RecModel, use_precision
from pipeline.rec.split_body import lower_states, upper_layer_indices, upper_states
from pipeline.rec.training import BatchStream, cosine_with_warmup


def make_upper_lora_trainable(rec: RecModel, upper: int) -> list[torch.nn.Parameter]:
    """Freeze everything, then unfreeze the LoRA factors of the top `upper` layers; returns them."""
    indices = set(upper_layer_indices(rec, upper))
    rec.requires_grad_(False)
    chosen = []
    for name, parameter in rec.llm.named_parameters():
        if "lora_" in name and _layer_of(name) in indices:
            parameter.requires_grad_(True)
            chosen.append(parameter)
    if not chosen:
        raise ValueError(f"no LoRA factors in the top {upper} layers (LoRA target modules there?)")
    return chosen


def _layer_of(name: str) -> int | None:
    parts = name.split(".")
    for a, b in zip(parts, parts[1:]):
        if a == "layers" and b.isdigit():
            return int(b)
    return None


@torch.no_grad()
def cache_lower_states(rec: RecModel, examples: Sequence[RecExample], lower: int, batch_size: int) -> dict[int, torch.Tensor]:
    """id(example) -> (length, H) output of the first `lower` layers over prompt + answer (on the
    model's device)."""
    was_training = rec.training
    rec.eval()
    cache = {}
    for index in length_buckets([e.length for e in examples], batch_size):
        chunk = [examples[i] for i in index]
        states = lower_states(rec, collate(chunk, rec.pad_id, with_answers=True), lower)
        for example, row in zip(chunk, states):
            cache[id(example)] = row[: example.length].clone()
    rec.train(was_training)
    return cache


def padded_states(cache: dict[int, torch.Tensor], examples: Sequence[RecExample], width: int) -> torch.Tensor:
    first = cache[id(examples[0])]
    out = torch.zeros(len(examples), width, first.shape[-1], dtype=first.dtype, device=first.device)
    for b, example in enumerate(examples):
        row = cache[id(example)]
        out[b, : len(row)] = row
    return out


def train_expert(
    rec: RecModel, train: Sequence[RecExample], reasoning: Sequence[RecExample], params: ExpertTrainParams,
    loss_params: LossParams, cached: bool = True,
) -> dict:
    """Train the top layers' LoRA of `rec` in place. Returns the log (steps, tokens, seconds)."""
    torch.manual_seed(params.seed)
    rng = np.random.default_rng(params.seed)
    use_precision(rec, params.dtype)
    trainable = make_upper_lora_trainable(rec, params.upper_layers)
    lower = upper_layer_indices(rec, params.upper_layers).start
    started = time.perf_counter()
    cache = cache_lower_states(rec, list(train) + list(reasoning), lower, params.batch_size) if cached else {}
    cache_seconds = time.perf_counter() - started
    optimizer = torch.optim.AdamW(trainable, lr=params.lr, weight_decay=params.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_with_warmup(params.warmup_steps, params.steps))
    streams = {"train": BatchStream(train, params.batch_size, rng)}
    if reasoning and params.reasoning_prob > 0:
        streams["reasoning"] = BatchStream(reasoning, params.batch_size, rng)
    log: dict = {"steps": [], "lower_layers": lower, "upper_layers": params.upper_layers, "cached": cached}
    rec.train()
    for step in tqdm(range(params.steps), desc="train expert", leave=False):
        use_reasoning = "reasoning" in streams and rng.random() < params.reasoning_prob
        examples = streams["reasoning" if use_reasoning else "train"].next()
        batch = collate(examples, rec.pad_id, with_answers=True)
        loss, parts = rec_loss(_hidden(rec, batch, examples, cache, lower, cached), rec, batch, loss_params)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        schedule.step()
        log["steps"].append({"step": step + 1, "loss": float(loss.detach()), **parts,
                             "tokens": int(batch.attention_mask.sum()), "reasoning": use_reasoning})
    rec.eval()
    rec.requires_grad_(False)
    log["cache_seconds"] = cache_seconds
    log["train_seconds"] = time.perf_counter() - started
    return log


def _hidden(rec: RecModel, batch: RecBatch, examples, cache, lower: int, cached: bool) -> torch.Tensor:
    if not cached:
        return rec.hidden_states(batch)
    states = padded_states(cache, examples, batch.input_ids.shape[1])
    return upper_states(rec, states, batch.attention_mask, lower)
