"""Training one LoRA expert: a ThinkRec model with only the LoRA of the top `upper` layers
trainable, on one cluster's packed rows and traces. The model is the one the stage loads
(experts.train.prompt): ThinkRec's stage-2 model (stage-1 LoRA, projector frozen) on CF-slot
prompts, or its stage-1 variant (the same LoRA, no projector) on text prompts.

Only the top layers change, so the lower layers' output for a pack is fixed: it is computed once
per pack (eval mode) and each step runs the top layers only (`cached=True`). `cached=False` runs
the whole body every step (the same loss; kept for the benchmark's comparison).

With experts.train.epochs the schedule is the LLM stages' (pipeline/rec/training.py: epochs of
steps_per_epoch label steps, the reference's LR) and after each epoch the cluster's valid_small rows
are scored in the model being trained, by the normal full forward (eval mode, then back to
training), as ThinkRec's stage 3 validates: the best checkpoint by rec.scoring.selection is kept,
`patience` stops early."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import torch

from pipeline.errors import BadParams
from pipeline.experts.params import ExpertTrainParams
from pipeline.rec.batching import RecBatch, collate_packs, length_buckets
from pipeline.rec.examples import RecExample
from pipeline.rec.params import LossParams, PackingParams, ScoringParams
from pipeline.rec.model import RecModel, body_mask, use_precision
from pipeline.rec.packing import Pack, disjoint_shares, label_blocks, packs_of, singletons
from pipeline.rec.recommender import Recommender
from pipeline.rec.precision import resolve_precision
from pipeline.rec.selection import Validation, selection_defined
from pipeline.rec.split_body import lower_states, upper_layer_indices, upper_states
from pipeline.rec.training import Validate, label_rows, loop_params, train_loop, training_schedule


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
def cache_lower_states(rec: RecModel, items: Sequence[RecExample | Pack], lower: int, batch_size: int
                       ) -> dict[int, torch.Tensor]:
    """id(item) -> (length, H) output of the first `lower` layers over prompt + answer of a row or
    of a whole pack (on the model's device)."""
    was_training = rec.training
    rec.eval()
    cache = {}
    for index in length_buckets([item.length for item in items], batch_size):
        chunk = [items[i] for i in index]
        packs = [item if isinstance(item, Pack) else Pack([item]) for item in chunk]
        states = lower_states(rec, collate_packs(packs, rec.pad_id), lower)
        for item, row in zip(chunk, states):
            cache[id(item)] = row[: item.length].clone()
    rec.train(was_training)
    return cache


def padded_states(cache: dict[int, torch.Tensor], items: Sequence[RecExample | Pack], width: int) -> torch.Tensor:
    first = cache[id(items[0])]
    out = torch.zeros(len(items), width, first.shape[-1], dtype=first.dtype, device=first.device)
    for b, item in enumerate(items):
        row = cache[id(item)]
        out[b, : len(row)] = row
    return out


def train_expert(
    rec: RecModel, packs: Sequence[Pack], traces: Sequence[Pack], params: ExpertTrainParams,
    loss_params: LossParams, cached: bool = True, validate: Validate | None = None,
) -> dict:
    """Train the top layers' LoRA of `rec` in place on the cluster's `packs` and `traces` (the
    shared loop and schedule, pipeline/rec/training.py: one pass, or with params.epochs epochs with
    `validate` after each, the best checkpoint restored). Returns its log plus cache_seconds (the
    lower layers' pass, not in train_seconds) and the rows of the schedule it trained."""
    if params.epochs is not None and validate is None:
        raise ValueError("experts.train.epochs: an expert trained in epochs needs its validation rows (validate)")
    precision = resolve_precision(params.dtype, rec.device)
    use_precision(rec, precision)
    make_upper_lora_trainable(rec, params.upper_layers)
    lower = upper_layer_indices(rec, params.upper_layers).start
    schedule = training_schedule(packs, traces, params)
    started = time.perf_counter()
    cache = cache_lower_states(rec, list(packs) + list(traces), lower, params.batch_size) if cached else {}
    cache_seconds = time.perf_counter() - started

    def forward(model: RecModel, batch: RecBatch, chunk: list[Pack]) -> torch.Tensor:
        if not cached:
            return model.hidden_states(batch)
        mask = body_mask(batch)
        states = padded_states(cache, chunk, batch.input_ids.shape[1])
        return upper_states(model, states, mask["attention_mask"], lower, position_ids=mask.get("position_ids"))

    log = train_loop(rec, schedule, loop_params(params, precision), loss_params, forward, validate=validate)
    rec.eval()
    rec.requires_grad_(False)
    schedule = schedule[: len(log["steps"])]  # one micro-batch per step: what was trained (an early stop ends it)
    rows = label_rows(schedule)
    return {**log, "precision": precision, "lower_layers": lower, "upper_layers": params.upper_layers,
            "cached": cached, "cache_seconds": cache_seconds, "train_rows": sorted(set(rows)),
            "micro_batches": {"labels": sum(m.kind == "labels" for m in schedule),
                              "reasoning": sum(m.kind == "reasoning" for m in schedule)}}


@dataclass
class TrainedExpert:
    """What train_cluster_expert returns, for the stage to write (stages/expert.py)."""

    rec: RecModel  # the base model, the cluster's LoRA trained in its top layers
    description: dict  # data/experts/expert_<slot>/expert.json
    log: dict  # data/experts/expert_<slot>/train_log.json: no timings
    metrics: dict  # metrics/experts/expert_<slot>.json less total_seconds (the stage's clock)


def train_cluster_expert(recommender: Recommender, slot: int, users: set[int], params: ExpertTrainParams,
                         packing: PackingParams, loss_params: LossParams, scoring: ScoringParams) -> TrainedExpert:
    """Train expert `slot` in `recommender`'s model (loaded with its traces) on the train rows and
    traces of cluster `slot`'s `users`, encoded in that model's prompt form (CF slots or text): up to
    params.train_rows rows in whole packs (rec.packing, drawn with params.seed). With params.epochs,
    the cluster's valid_small rows select the checkpoint (`scoring`: rec.scoring). Writes nothing."""
    data = recommender.data
    frame = data.interactions[(data.interactions["split"] == "train") & data.interactions["user"].isin(users)]
    blocks = label_blocks(frame, packing.targets, packing.max_span_seconds)
    blocks = disjoint_shares(blocks, [min(params.train_rows, len(frame))], params.seed)[0]
    rows = [row for block in blocks for row in block]
    train = recommender.encode(frame.set_index("row", drop=False).loc[rows], None, f"encode cluster {slot}")
    traced = frame[frame["row"].isin(data.traces)]
    reasoning = recommender.encode(traced, data.traces, f"encode cluster {slot} traces")
    validate = cluster_validation(recommender, slot, users, params, scoring) if params.epochs is not None else None
    log = train_expert(recommender.rec, packs_of(train, blocks), singletons(reasoning), params, loss_params,
                       validate=validate)
    timings = {k: log.pop(k) for k in ("cache_seconds", "train_seconds", "validation_seconds")}
    description = {"slot": slot, "used": True, "users": len(users), "train_rows": len(log["train_rows"]),
                   "packs": len(blocks), "traces": len(reasoning), "micro_batches": log["micro_batches"],
                   "precision": log["precision"], "upper_layers": params.upper_layers, "from": recommender.name}
    steps = log["steps"]
    tokens = sum(s["tokens"] for s in steps)
    answers = sum(s["answers"] for s in steps)
    metrics = {**description, **timings, "train_tokens": tokens,
               "train_tokens_per_second": tokens / max(timings["train_seconds"], 1e-9),
               "train_answers_per_second": answers / max(timings["train_seconds"], 1e-9),
               "loss_first": steps[0]["loss"], "loss_last": steps[-1]["loss"]}
    if validate is not None:
        selected = epochs_record(log, validate)
        log.update(selected)
        metrics.update({k: selected[k] for k in ("best_step", "epochs", "valid_small", "valid_small_rows")})
    return TrainedExpert(recommender.rec, description, log, metrics)


def cluster_validation(recommender: Recommender, slot: int, users: set[int], params: ExpertTrainParams,
                       scoring: ScoringParams) -> Validation:
    """The loop's `validate` of expert `slot`: valid_small's rows of the cluster's `users`, scored in
    the model being trained (its prompt form, the full forward) and measured by
    rec.scoring.selection. Rows on which that rule is undefined are a BadParams naming the key."""
    frame = recommender.data.subset("valid_small")
    frame = frame[frame["user"].isin(users)]
    if not selection_defined(frame["user"].to_numpy(), frame["label"].to_numpy(), scoring.selection):
        both = int((frame.groupby("user")["label"].nunique() == 2).sum())
        raise BadParams(
            f"experts.train.epochs: expert@{slot}'s cluster has {len(frame)} valid_small rows "
            f"({int(frame['label'].sum())} liked, {both} users with both labels): rec.scoring.selection "
            f"{scoring.selection!r} is undefined on them, so no epoch could be chosen (AUC needs both labels, UAUC "
            f"a user with both; experts.train.epochs: null trains one pass)")
    valid = recommender.encode(frame, None, f"encode cluster {slot} valid_small")
    precision = resolve_precision(params.dtype, recommender.rec.device)
    return Validation(lambda: recommender.score(valid, scoring.batch_size, precision, f"valid_small cluster {slot}"),
                      [e.user for e in valid], [e.label for e in valid], scoring.selection)


def epochs_record(log: dict, validate: Validation) -> dict:
    """What an expert trained in epochs adds to its train log and metrics, by the LLM stages' names
    (pipeline/rec/recipe.py): each evaluation's step, epoch, AUC, UAUC and selection value; the
    best one's step and metrics; the epochs planned and whether patience stopped them."""
    evals = [{**at, **{k: v for k, v in e.items() if k != "scores"}} for at, e in zip(log["evals"], validate.evals)]
    chosen = evals[log["best_eval"]]
    return {"evals": evals, "best_step": log["best_step"], "best_eval": log["best_eval"], "epochs": log["epochs"],
            "valid_small": {k: chosen[k] for k in ("auc", "uauc", "selection")},
            "valid_small_rows": len(validate.labels)}
