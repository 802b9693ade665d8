"""One recipe for the three variants (TALLRec-, CoLLM-, ThinkRec-style): read artifacts, build
prompts, train, select on valid_small, save adapter + projector, score valid_small and test_small."""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict

from pipeline import schemas
from pipeline.artifacts import read_frame, replace_directory, write_frame, write_json
from pipeline.rec.examples import CFVectors, RecExample, build_catalog, build_examples, load_cf_vectors
from pipeline.rec.losses import LossParams
from pipeline.rec.model import LoraParams, RecModel, build_rec_model, save_rec_model
from pipeline.rec.prompts import get_template
from pipeline.rec.scoring import score_examples
from pipeline.rec.selection import selection_metrics
from pipeline.rec.training import TrainParams, train_rec_model


class PromptParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str = "v1"
    history_items: int = 10
    title_words: int = 6
    keywords_per_item: int = 3
    max_answer_tokens: int = 64


class ProjectorParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expansion: int = 10
    match_embedding_norm: bool = True


class ScoringParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    batch_size: int = 16
    dtype: str = "bfloat16"
    selection: str = "reference"


class RecParams(BaseModel):
    """params.yaml's `rec` section."""

    model_config = ConfigDict(extra="forbid")
    backbone: str = "data/models/smollm2-135m-instruct"
    threads: int = 1
    answer_logit: str = "yes_minus_no"
    prompt: PromptParams = PromptParams()
    lora: LoraParams = LoraParams()
    projector: ProjectorParams = ProjectorParams()
    loss: LossParams = LossParams()
    scoring: ScoringParams = ScoringParams()
    train_text: TrainParams = TrainParams()
    train_cf: TrainParams = TrainParams()
    train_think: TrainParams = TrainParams()


@dataclass(frozen=True)
class VariantSpec:
    """What distinguishes the variants: prompt content, starting point, what is trained."""

    name: str  # tallrec | collm | thinkrec
    cf_slots: bool
    keywords: bool
    traces: bool
    init_from: Path | None  # a trained variant's directory (adapter + projector)
    train_lora: bool
    train_projector: bool


@dataclass(frozen=True)
class RecInputs:
    interactions: Path
    items: Path
    subsets: Path
    user_vectors: Path | None = None
    item_vectors: Path | None = None
    keywords: Path | None = None
    traces: Path | None = None


def run_variant(
    spec: VariantSpec, params: RecParams, train_params: TrainParams, inputs: RecInputs, out_dir: Path,
    predictions_path: Path, metrics_path: Path,
) -> dict:
    """Train and score one variant; writes `out_dir` (adapter, projector, train_log.json), the
    PREDICTIONS parquet for valid_small + test_small rows and `metrics_path` (timings, best step,
    valid_small selection). train_log.json holds no timings, so the same inputs give the same
    bytes and an unchanged model does not rerun the stages that read `out_dir`. Returns
    {"log": what train_log.json holds, "metrics": what `metrics_path` holds}."""
    torch.set_num_threads(params.threads)
    started = time.perf_counter()
    data = _load_data(spec, inputs)
    torch.manual_seed(train_params.seed)  # LoRA and projector initialisation
    rec = _build_model(spec, params, data.vectors)
    encode = _encoder(spec, params, rec, data)
    train_frame = data.interactions[data.interactions["split"] == "train"]
    train_frame = train_frame.sample(n=min(train_params.train_rows, len(train_frame)), random_state=train_params.seed)
    train = encode(train_frame, None, "encode train")
    reasoning = encode(data.interactions[data.interactions["row"].isin(data.traces)], data.traces, "encode traces")
    valid = encode(data.subset("valid_small"), None, "encode valid_small")
    test = encode(data.subset("test_small"), None, "encode test_small")

    evals: list[dict] = []

    def validate() -> float:
        scores = score_examples(rec, valid, params.scoring.batch_size, params.scoring.dtype, "valid_small")
        metrics = selection_metrics(*_users_labels(valid), scores, params.scoring.selection)
        evals.append({**metrics, "scores": scores})
        return metrics["selection"]

    log = train_rec_model(rec, train, reasoning, train_params, params.loss, validate)
    best = evals[log["best_eval"]]  # the evaluation of the checkpoint train_rec_model restored
    _save_model(rec, out_dir)
    scoring_started = time.perf_counter()
    test_scores = score_examples(rec, test, params.scoring.batch_size, params.scoring.dtype, "test_small")
    test_seconds = time.perf_counter() - scoring_started
    _write_predictions(valid + test, np.concatenate([best["scores"], test_scores]), predictions_path)
    valid_small = {k: best[k] for k in ("auc", "uauc", "selection")}
    train_log = {
        "variant": spec.name,
        "rows": {"train": len(train), "reasoning": len(reasoning), "valid_small": len(valid), "test_small": len(test)},
        "mean_prompt_tokens": float(np.mean([len(e.prompt_ids) for e in train + valid + test])),
        "valid_small": valid_small,
        "evals": [{k: v for k, v in e.items() if k != "scores"} for e in evals],
        **{k: v for k, v in log.items() if k not in ("evals", "train_seconds")},
    }
    write_json(train_log, out_dir / "train_log.json")
    metrics = {
        "variant": spec.name,
        "best_step": log["best_step"],
        "valid_small": valid_small,
        "train_seconds": log["train_seconds"],
        "test_scoring_seconds": test_seconds,
        "test_rows_per_second": len(test) / max(test_seconds, 1e-9),
        "total_seconds": time.perf_counter() - started,
    }
    write_json(metrics, metrics_path)
    return {"log": train_log, "metrics": metrics}


@dataclass
class _Data:
    interactions: pd.DataFrame
    items: pd.DataFrame
    subsets: pd.DataFrame
    vectors: CFVectors | None
    keywords: pd.DataFrame | None
    traces: dict[int, str]

    def subset(self, name: str) -> pd.DataFrame:
        rows = self.subsets.loc[self.subsets["subset"] == name, "row"]
        if rows.empty:
            raise ValueError(f"subsets.parquet: subset '{name}' is empty")
        return self.interactions[self.interactions["row"].isin(rows)]


def _load_data(spec: VariantSpec, inputs: RecInputs) -> _Data:
    vectors = load_cf_vectors(inputs.user_vectors, inputs.item_vectors, spec.name) if spec.cf_slots else None
    keywords = read_frame(inputs.keywords, schemas.ITEM_KEYWORDS) if spec.keywords else None
    traces: dict[int, str] = {}
    if spec.traces:
        frame = read_frame(inputs.traces, schemas.TRACES)
        traces = dict(zip(frame["row"].astype(int), frame["trace"]))
    return _Data(
        read_frame(inputs.interactions, schemas.INTERACTIONS),
        read_frame(inputs.items, schemas.ITEMS),
        read_frame(inputs.subsets, schemas.SUBSET_ROWS),
        vectors, keywords, traces,
    )


def _build_model(spec: VariantSpec, params: RecParams, vectors: CFVectors | None) -> RecModel:
    rec = build_rec_model(
        params.backbone, params.lora, spec.init_from, spec.train_lora,
        vectors.dim if vectors is not None else None, params.projector.expansion, params.answer_logit,
    )
    if rec.projector is not None:
        fresh = spec.init_from is None or not (Path(spec.init_from) / "projector.pt").exists()
        if fresh and params.projector.match_embedding_norm:
            sample = torch.from_numpy(vectors.items[: 2048])
            rec.projector.calibrate(sample, rec.llm.get_input_embeddings().weight)
        rec.projector.requires_grad_(spec.train_projector)
    return rec


def _encoder(spec: VariantSpec, params: RecParams, rec: RecModel, data: _Data):
    p = params.prompt
    catalog = build_catalog(data.items, data.keywords, p.title_words, p.keywords_per_item if spec.keywords else 0)
    template = get_template(p.version)

    def encode(frame: pd.DataFrame, traces: dict[int, str] | None, desc: str) -> list[RecExample]:
        return build_examples(
            frame, catalog, rec.tokenizer, template, p.history_items, data.vectors, traces, p.max_answer_tokens, desc
        )

    return encode


def _users_labels(examples: list[RecExample]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([e.user for e in examples]), np.array([e.label for e in examples])


def _save_model(rec: RecModel, out_dir: Path) -> None:
    """Replace `out_dir` with the new adapter + projector only once they are fully written."""
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_rec_model(rec, tmp)
    replace_directory(tmp, out_dir)


def _write_predictions(examples: list[RecExample], scores: np.ndarray, path: Path) -> None:
    frame = pd.DataFrame(
        {
            "row": [e.row for e in examples],
            "user": [e.user for e in examples],
            "item": [e.item for e in examples],
            "score": scores.astype(np.float32),
        }
    ).drop_duplicates("row")
    write_frame(frame, path, schemas.PREDICTIONS)
