"""One student run: build backbone + new LoRA + new CF projector, encode the task rows, train,
score the top-N candidates and rank the whole catalogue with the next-item head, and return the
model, its train log, predictions, ranks and metrics; the stage (stages/rdrec.py) writes them.
Nothing here writes a file."""
from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipeline import schemas
from pipeline.artifacts import read_frame
from pipeline.errors import BadInput, MissingInput
from pipeline.rec.device import resolve_device
from pipeline.rec.examples import CFVectors, build_catalog, load_cf_vectors, topn_frame
from pipeline.rec.model import LoraParams, RecModel, build_rec_model
from pipeline.rec.packing import Pack, singletons
from pipeline.rec.scoring import score_candidates
from pipeline.ranking.catalogue import evaluated_users
from pipeline.ranking.params import RankingParams
from pipeline.rdrec.next_item import NextItemHead, rank_catalogue
from pipeline.rdrec.params import RATIONALE_TASKS, RDRecParams
from pipeline.rdrec.tasks import TaskEncoder, rank_rows
from pipeline.rdrec.training import train_student
from pipeline.sizes import rank_positives


@dataclass(frozen=True)
class StudentInputs:
    interactions: Path
    items: Path
    topn_candidates: Path
    user_vectors: Path
    item_vectors: Path
    row_user_vectors: Path | None  # sequential CF models: the user's state before each row
    rationales: Path | None  # None: a variant without rationale tasks


@dataclass(frozen=True)
class Backbone:
    """What the student shares with pipeline/rec (params.yaml `rec`): backbone, LoRA and projector
    shape, threads and device."""

    path: str
    lora: LoraParams
    projector_expansion: int
    match_embedding_norm: bool
    answer_logit: str
    threads: int
    device: str  # rec.device setting (resolve_device)


def build_student(backbone: Backbone, vectors: CFVectors, seed: int, frozen_dtype: str) -> RecModel:
    """Backbone + a new trainable LoRA + a new projector scaled per slot kind to the token
    embeddings' norm, the frozen weights in `frozen_dtype`, on the backbone's device."""
    torch.manual_seed(seed)
    calibrate = backbone.match_embedding_norm
    rec = build_rec_model(backbone.path, backbone.lora, cf_dim=vectors.dim,
                          projector_expansion=backbone.projector_expansion, answer_logit=backbone.answer_logit,
                          calibration_vectors=vectors.calibration_items() if calibrate else None,
                          calibration_users=vectors.calibration_users() if calibrate else None,
                          frozen_dtype=frozen_dtype, device=resolve_device(backbone.device))
    rec.projector.requires_grad_(True)
    return rec


def task_pools(encoder: TaskEncoder, interactions: pd.DataFrame, item_ids: np.ndarray,
               rationales: pd.DataFrame | None, params: RDRecParams) -> dict[str, list[Pack]]:
    """rank packs (a liked train row's user prompt, then the liked item and its sampled
    never-interacted negatives as targets), next rows (the same liked rows: their history, their
    item the next one) and, with `rationales`, one preference and one attributes row per rationale
    (fallback rationales only when allowed); every row but a rank pack is its own pack."""
    train = interactions[interactions["split"] == "train"]
    t = params.train
    positives = rank_positives(t.rank_positives, int((train["label"] == 1).sum()))
    ranked = rank_rows(train, item_ids, positives, t.negatives, t.seed)
    examples = [encoder.rank(r.row, r.user, r.item, r.label, r.history_items, r.history_labels)
                for r in ranked.itertuples(index=False)]
    pools = {"rank": [Pack([e for e in group]) for _, group in groupby(examples, key=lambda e: e.row)]}
    liked = ranked[ranked["label"] == 1]
    pools["next"] = singletons([encoder.next(r.row, r.user, r.item, r.history_items, r.history_labels)
                                for r in liked.itertuples(index=False)])
    if rationales is not None:
        usable = rationales if t.use_fallback_rationales else rationales[rationales["source"] == "llm"]
        rows = usable.merge(interactions, on="row", how="left", validate="one_to_one")
        if rows["user"].isna().any():
            raise ValueError(f"rationales: row {int(rows.loc[rows['user'].isna(), 'row'].iloc[0])} is not in interactions")
        pools["preference"] = singletons([encoder.preference(r.row, r.user, r.item, r.history_items,
                                                             r.history_labels, r.user_preference)
                                          for r in rows.itertuples(index=False)])
        pools["attributes"] = singletons([encoder.attributes(r.row, r.user, r.item, r.item_attributes)
                                          for r in rows.itertuples(index=False)])
    return pools


@dataclass
class TrainedStudent:
    """What train_student_variant returns, for the stage to write (stages/rdrec.py)."""

    rec: RecModel  # the trained student (LoRA + projector)
    log: dict  # data/rdrec/<variant>/train_log.json: no timings, so the same inputs give the same bytes
    predictions: pd.DataFrame  # PREDICTIONS rows of the top-N candidates (row -1)
    ranks: pd.DataFrame  # RANKS rows: the next-item head's full-catalogue ranks (tasks topn and next)
    metrics: dict  # metrics/<variant>_train.json: timings, tokens/s, task counts


def train_student_variant(name: str, params: RDRecParams, backbone: Backbone, inputs: StudentInputs,
                          ranking: RankingParams) -> TrainedStudent:
    """Train variant `name` (params.variants[name]: task weights) on the artifacts of `inputs`,
    score the top-N candidates and rank the catalogue for the users `ranking` evaluates. Writes
    nothing."""
    if name not in params.variants:
        raise KeyError(f"rdrec.variants: no variant '{name}' (known: {sorted(params.variants)})")
    torch.set_num_threads(backbone.threads)
    started = time.perf_counter()
    interactions = read_frame(inputs.interactions, schemas.INTERACTIONS)
    items = read_frame(inputs.items, schemas.ITEMS)
    candidates = read_frame(inputs.topn_candidates, schemas.TOPN_CANDIDATES)
    vectors = load_cf_vectors(inputs.user_vectors, inputs.item_vectors, name, inputs.row_user_vectors)
    if len(vectors.items) != len(items):  # the next-item head scores the CF table's rows as the catalogue
        raise BadInput(f"{inputs.item_vectors}: {len(vectors.items)} item vectors for {len(items)} catalogue items")
    weights = params.variants[name]
    wants_rationales = any(weights.get(task, 0) > 0 for task in RATIONALE_TASKS)
    if wants_rationales and inputs.rationales is None:
        raise MissingInput(f"rdrec.variants.{name}: rationale tasks need data/rationales/rationales.parquet (stage rationales)")
    rationales = read_frame(inputs.rationales, schemas.RATIONALES) if wants_rationales else None

    rec = build_student(backbone, vectors, params.train.seed, params.train.dtype)
    catalog = build_catalog(items, None, params.prompt.title_words, 0)
    encoder = TaskEncoder(rec.tokenizer, catalog, vectors, params.prompt.history_items,
                          params.prompt.max_rationale_tokens)
    pools = task_pools(encoder, interactions, items["item"].to_numpy(), rationales, params)
    head = NextItemHead(vectors.items)
    log = train_student(rec, pools, weights, params.train, head)
    train_seconds = log.pop("train_seconds")
    log.pop("validation_seconds")

    frame = topn_frame(candidates, interactions)
    topn = [encoder.rank(-1, r.user, r.item, r.label, r.history_items, r.history_labels, r.state_row)
            for r in frame.itertuples(index=False)]
    clock = time.perf_counter()
    scores = score_candidates(rec, topn, params.scoring.topn_batch_size, log["precision"], f"{name} top-N")
    topn_seconds = time.perf_counter() - clock
    ranked = rank_catalogue(rec, head, encoder, evaluated_users(interactions, len(items), ranking), interactions,
                            params.scoring.ranking_batch_size, log["precision"])

    train_log = {
        "variant": name, "weights": weights,
        "pool_packs": {task: len(pool) for task, pool in sorted(pools.items())},
        "rationales_cut": sum(t.answer_cut for task in RATIONALE_TASKS for p in pools.get(task, [])
                              for t in p.targets),
        "mean_pack_tokens": {task: float(np.mean([p.length for p in pool])) if pool else 0.0
                             for task, pool in sorted(pools.items())},
        **log,
    }
    predictions = pd.DataFrame({
        "row": np.full(len(topn), -1, dtype=np.int64),
        "user": frame["user"].to_numpy(dtype=np.int32),
        "item": frame["item"].to_numpy(dtype=np.int32),
        "score": scores.astype(np.float32),
    })
    train_tokens = sum(counts["tokens"] for counts in log["tasks"].values())
    metrics = {
        "variant": name,
        "precision": log["precision"],
        "steps": len(log["steps"]),
        "rank_rows": log["rank_rows"],
        "rank_answers": log["rank_answers"],
        "tasks": log["tasks"],
        "task_weights": log["task_weights"], "task_shares": log["task_shares"],
        "pool_packs": train_log["pool_packs"],
        "pool_answers": {task: sum(len(p.targets) for p in pool) for task, pool in sorted(pools.items())},
        "train_tokens": train_tokens,
        "train_seconds": train_seconds,
        "train_tokens_per_second": train_tokens / max(train_seconds, 1e-9),
        "topn_candidates": len(topn),
        "topn_prompt_tokens": int(sum(len(e.prompt_ids) for e in topn)),
        "topn_scoring_seconds": topn_seconds,
        "topn_candidates_per_second": len(topn) / max(topn_seconds, 1e-9),
        "ranking_users": ranked.users,
        "ranking_prompt_tokens": ranked.prompt_tokens,
        "ranking_targets": {task: int((ranked.ranks["task"] == task).sum()) for task in ("next", "topn")},
        "ranking_seconds": ranked.seconds,
        "total_seconds": time.perf_counter() - started,
    }
    return TrainedStudent(rec, train_log, predictions, ranked.ranks, metrics)
