"""One recipe for every variant: build the model a variant starts from, train it, score the
evaluation rows, and return the trained model, its train log, metrics and predictions; the stage
(stages/rec_stage.py) writes them. Nothing here writes a file."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipeline.errors import BadParams
from pipeline.rec import distributed
from pipeline.rec.data import RecInputs, load_variant_data
from pipeline.rec.device import resolve_device
from pipeline.rec.examples import CFVectors, RecExample, topn_frame
from pipeline.rec.model import RecModel, build_rec_model, freeze_lora_dropout
from pipeline.rec.params import PromptParams, RecParams
from pipeline.rec.recommender import Recommender
from pipeline.rec.selection import Validation
from pipeline.rec.packing import Pack, PackingParams, disjoint_shares, label_blocks, packs_of, singletons
from pipeline.rec.precision import resolve_precision
from pipeline.rec.training import label_rows, train_rec_model
from pipeline.rec.variants import VariantSpec, variants
from pipeline.sizes import SAME, train_shares


@dataclass
class TrainedVariant:
    """What train_variant returns, for the stage to write (stages/rec_stage.py)."""

    recommender: Recommender  # the trained model, with the data and encoder it trained on
    log: dict  # data/rec/<variant>/train_log.json: no timings, so the same inputs give the same bytes
    metrics: dict | None  # metrics/<variant>_train.json: timings, valid_small scores (None on a rank > 0)
    predictions: pd.DataFrame | None  # PREDICTIONS rows of a reported variant (None: not reported, or a rank > 0)


def train_variant(spec: VariantSpec, params: RecParams, inputs: RecInputs, lora_dir: Path | None) -> TrainedVariant:
    """Train `spec` (stage 2: on the frozen LoRA saved in `lora_dir`) on the artifacts of `inputs`.
    A reported variant also scores valid_small, test_small and (a registry model with topn) the
    top-N candidates. Under torchrun a rank > 0 returns the loop's log only (rank 0 holds the same
    weights). Writes nothing."""
    torch.set_num_threads(distributed.threads_per_process(params.threads))
    started = time.perf_counter()
    check_cf_slots(params.prompt)
    train_params = params.training(spec.name, spec.stage)
    data = load_variant_data(spec, inputs)
    torch.manual_seed(train_params.seed)  # LoRA and projector initialisation
    rec = build_variant_model(spec, params, data.vectors, lora_dir)
    precision = resolve_precision(train_params.dtype, rec.device)
    recommender = Recommender(spec.name, spec, rec, data, params.prompt, precision)
    encode = recommender.encode
    blocks = stage_blocks(data.interactions, params, spec.stage)
    rows = [row for block in blocks for row in block]
    train_examples = encode(data.interactions.set_index("row", drop=False).loc[rows], None, "encode train")
    packs = packs_of(train_examples, blocks)
    reasoning = encode(data.interactions[data.interactions["row"].isin(data.traces)], data.traces, "encode traces")
    selects = train_params.eval_every > 0 or train_params.epochs is not None
    wants_valid = selects or (spec.reported and (params.scoring.valid or spec.scores_valid))
    valid = encode(data.subset("valid_small"), None, "encode valid_small") if wants_valid else []
    validate = Validation(lambda: recommender.score(valid, params.scoring.batch_size, desc="valid_small"),
                          [e.user for e in valid], [e.label for e in valid], params.scoring.selection)
    evals = validate.evals

    log, schedule = train_rec_model(
        rec, packs, singletons(reasoning), train_params, params.loss,
        validate=validate if selects and distributed.is_main() else None,
        probe=singletons(train_examples[: train_params.probe_rows]))
    if not distributed.is_main():  # under torchrun: rank 0 holds the same weights and writes everything
        return TrainedVariant(recommender, log, None, None)
    timings = {key: log.pop(key) for key in ("train_seconds", "validation_seconds")}
    if "best_eval" not in log and spec.reported and (params.scoring.valid or spec.scores_valid):
        validate()  # the final weights on valid_small, for the record (no selection)
    chosen = evals[log.get("best_eval", -1)] if evals else None
    valid_small = {k: chosen[k] for k in ("auc", "uauc", "selection")} if chosen else None
    seen = label_rows(schedule)
    train_log = {
        "variant": spec.name,
        "precision": recommender.precision,
        "rows": {"train": len(set(seen)), "reasoning": len(reasoning), "valid_small": len(valid) if evals else 0},
        "packing": packing_summary(packs, params.packing),
        "micro_batches": {"labels": sum(m.kind == "labels" for m in schedule),
                          "reasoning": sum(m.kind == "reasoning" for m in schedule)},
        "traces_cut": sum(e.answer_cut for e in reasoning),
        "max_answer_tokens": params.prompt.max_answer_tokens,
        "mean_prompt_tokens": float(np.mean([len(e.prompt_ids) for e in train_examples])),
        "train_rows": sorted(set(seen)),
        "valid_small": valid_small,
        "evals": [{k: v for k, v in e.items() if k != "scores"} for e in evals],
        **{k: v for k, v in log.items() if k != "evals"},
    }
    predictions = None
    if spec.reported:
        valid_rows, valid_scores = (valid, chosen["scores"]) if chosen else ([], np.zeros(0, np.float32))
        predictions = _score_reported(recommender, params, valid_rows, valid_scores, timings)
    tokens = sum(s["tokens"] for s in log["steps"])
    answers = sum(s["answers"] for s in log["steps"])
    metrics = {
        "variant": spec.name,
        "precision": recommender.precision,
        "best_step": log.get("best_step", len(log["steps"])),
        "valid_small": valid_small,
        "train_rows": train_log["rows"]["train"],
        "label_answers": len(seen),
        "stage1_overlap": stage1_overlap(seen, lora_dir) if spec.stage == 2 else None,
        "packing": train_log["packing"],
        "micro_batches": train_log["micro_batches"],
        "traces": {"rows": len(reasoning), "cut": train_log["traces_cut"]},
        "train_tokens": tokens,
        "train_tokens_per_second": tokens / max(timings["train_seconds"], 1e-9),
        "train_answers_per_second": answers / max(timings["train_seconds"], 1e-9),
        **timings,
        "total_seconds": time.perf_counter() - started,
    }
    return TrainedVariant(recommender, train_log, metrics, predictions)


def check_cf_slots(prompt: PromptParams) -> None:
    """rec.prompt.cf_slots names stage-2 variants of the registry only (a typo would change nothing)."""
    stage2 = sorted(name for name, spec in variants().items() if spec.stage == 2)
    unknown = sorted(set(prompt.cf_slots) - set(stage2))
    if unknown:
        raise BadParams(f"rec.prompt.cf_slots: {unknown} are not stage-2 variants (pipeline/registry.py: {stage2})")


def build_variant_model(
    spec: VariantSpec, params: RecParams, vectors: CFVectors | None, lora_dir: Path | None
) -> RecModel:
    """Stage 1: backbone + a new trainable LoRA. Stage 2: backbone + `lora_dir`'s LoRA (frozen, its
    dropout off) + a new trainable projector, its output scale matched to the token embeddings'
    norm per slot kind, user states and item vectors apart (rec.projector.match_embedding_norm). Frozen weights in the stage's dtype, on `rec.device`."""
    if spec.stage == 2 and lora_dir is None:
        raise ValueError(f"{spec.name}: a stage-2 variant needs the stage-1 LoRA of {spec.lora_from}")
    calibrate = spec.cf_slots and params.projector.match_embedding_norm
    rec = build_rec_model(
        params.backbone, params.lora, lora_dir if spec.stage == 2 else None, train_lora=spec.stage == 1,
        cf_dim=vectors.dim if spec.cf_slots else None, projector_expansion=params.projector.expansion,
        answer_logit=params.answer_logit,
        calibration_vectors=vectors.calibration_items() if calibrate else None,
        calibration_users=vectors.calibration_users() if calibrate else None,
        frozen_dtype=params.training(spec.name, spec.stage).dtype,
        device=resolve_device(params.device),
    )
    if rec.projector is not None:
        rec.projector.requires_grad_(True)
    if spec.stage == 2:
        freeze_lora_dropout(rec)
    return rec


def stage_blocks(interactions: pd.DataFrame, params: RecParams, stage: int) -> list[list[int]]:
    """The packs' row blocks of `stage`'s share of the train split: all train rows grouped into
    blocks (rec.packing), shuffled by rec.packing.seed, stage 1 taking the first
    rec.stage1.train_rows rows of them and stage 2 the next rec.stage2.train_rows (disjoint; counts,
    fractions or all, resolved by pipeline/sizes.py), or with rec.stage2.train_rows: same, stage
    1's blocks themselves."""
    train = interactions[interactions["split"] == "train"]
    blocks = label_blocks(train, params.packing.targets, params.packing.max_span_seconds)
    counts = train_shares(params.stage1.train_rows, params.stage2.train_rows, len(train))
    if params.stage2.train_rows == SAME:
        return disjoint_shares(blocks, counts[:1], params.packing.seed)[0]
    shares = disjoint_shares(blocks, list(counts), params.packing.seed)
    return shares[stage - 1]


def packing_summary(packs: list[Pack], packing: PackingParams) -> dict:
    sizes = np.array([len(p.targets) for p in packs])
    return {"targets": packing.targets, "max_span_seconds": packing.max_span_seconds, "seed": packing.seed,
            "packs": int(len(packs)), "mean_targets": float(sizes.mean()) if len(sizes) else 0.0,
            "mean_tokens": float(np.mean([p.length for p in packs])) if packs else 0.0}


def stage1_overlap(rows: list[int], lora_dir: Path | None) -> int | None:
    """How many of `rows` the stage-1 LoRA in `lora_dir` trained on (its train_log.json)."""
    path = Path(lora_dir) / "train_log.json" if lora_dir is not None else None
    if path is None or not path.exists():
        return None
    return len(set(rows) & set(json.loads(path.read_text()).get("train_rows", [])))


def _score_reported(recommender: Recommender, params: RecParams, valid: list[RecExample],
                    valid_scores: np.ndarray, timings: dict) -> pd.DataFrame:
    """PREDICTIONS rows: valid_small, test_small and (spec.topn) top-N candidates (row -1); the
    scoring timings added to `timings`."""
    spec, data = recommender.spec, recommender.data
    test = recommender.encode(data.subset("test_small"), None, "encode test_small")
    clock = time.perf_counter()
    test_scores = recommender.score(test, params.scoring.batch_size, desc="test_small")
    timings["test_scoring_seconds"] = time.perf_counter() - clock
    timings["test_rows_per_second"] = len(test) / max(timings["test_scoring_seconds"], 1e-9)
    parts = [predictions_frame(valid, valid_scores), predictions_frame(test, test_scores)]
    if spec.topn:
        if data.topn_candidates is None:
            raise ValueError(f"{spec.name}: ranking the top-N candidates needs topn_candidates.parquet")
        candidates = recommender.encode(topn_frame(data.topn_candidates, data.interactions), None, "encode top-N")
        clock = time.perf_counter()
        scores = recommender.score_candidates(candidates, params.scoring.topn_batch_size, desc="top-N")
        timings["topn_scoring_seconds"] = time.perf_counter() - clock
        timings["topn_candidates_per_second"] = len(candidates) / max(timings["topn_scoring_seconds"], 1e-9)
        parts.append(predictions_frame(candidates, scores))
    return pd.concat(parts, ignore_index=True).drop_duplicates(["row", "user", "item"])


def predictions_frame(examples: list[RecExample], scores: np.ndarray) -> pd.DataFrame:
    """PREDICTIONS rows (row, user, item, score) of scored examples."""
    return pd.DataFrame({
        "row": np.array([e.row for e in examples], dtype=np.int64),
        "user": np.array([e.user for e in examples], dtype=np.int32),
        "item": np.array([e.item for e in examples], dtype=np.int32),
        "score": np.asarray(scores, dtype=np.float32),
    })
