"""Re-rank CF candidates with a trained LLM recommender and let it write its reasoning.

Prompts come from the variant's own encoder (pipeline.rec.data.variant_encoder), so keywords and
CF slots are exactly as in training; every candidate shows the same history (the user's latest),
so score_candidates runs that shared prefix once and each candidate costs its target tokens."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipeline.experts.assign import assign_weights
from pipeline.experts.fused import install_experts
from pipeline.experts.gate import Gate
from pipeline.explain.generate import RepetitionControls
from pipeline.explain.reasoning import write_reasoning
from pipeline.rec.data import RecInputs, VariantData, load_variant_data, variant_encoder
from pipeline.rec.model import RecModel, load_rec_model
from pipeline.rec.params import PromptParams
from pipeline.rec.scoring import score_candidates
from pipeline.rec.variants import VariantSpec, get_variant


@dataclass
class Recommender:
    """A trained LLM recommender ready to score prompts of its own form."""

    spec: VariantSpec
    rec: RecModel
    data: VariantData  # items, keywords and CF tables the prompts read
    prompt: PromptParams
    gate: Gate | None = None  # with experts fused into `rec`: each prompt's expert weights
    warm_users: frozenset[int] = frozenset()  # users with train rows (the gate's cold rule)


def attach_experts(recommender: Recommender, expert_dirs: list[Path], upper: int, gate: Gate,
                   warm_users: set[int]) -> None:
    """Fuse the experts into the recommender's top `upper` layers; `gate` then weighs them per prompt."""
    install_experts(recommender.rec, expert_dirs, upper)
    recommender.gate, recommender.warm_users = gate, frozenset(warm_users)


def load_recommender(name: str, backbone: str, model_dir: Path, inputs: RecInputs, prompt: PromptParams,
                     device: torch.device | str = "cpu", frozen_dtype: str = "float32") -> Recommender:
    """The trained variant `name` (data/rec/<name>/ on `backbone`, frozen weights in `frozen_dtype`,
    placed on `device`) with the artifacts its prompts read. One entry point, so other kinds of
    recommender can be plugged in by name."""
    spec = get_variant(name)
    rec = load_rec_model(backbone, model_dir, device, frozen_dtype)
    # no traces: they are training answers, never part of a prompt
    data = load_variant_data(spec.without_traces(), inputs)
    return Recommender(spec, rec, data, prompt)


def candidate_frame(user: int, items: np.ndarray, history: tuple[list[int], list[int]]) -> pd.DataFrame:
    """build_examples input: each candidate as the target after `history` (row -1: not an
    interaction; state_row -1: the user's CF vector, not a per-row state)."""
    history_items, history_labels = history
    return pd.DataFrame({
        "row": -1, "user": user, "item": np.asarray(items, dtype=np.int64), "label": 0,
        "history_items": [list(history_items)] * len(items), "history_labels": [list(history_labels)] * len(items),
        "state_row": -1,
    })


def rerank(recommender: Recommender, frame: pd.DataFrame, batch_size: int, dtype: str) -> tuple[np.ndarray, list]:
    """(answer scores of `frame`'s candidates in order, their encoded examples)."""
    encode = variant_encoder(recommender.spec, recommender.prompt, recommender.rec.tokenizer, recommender.data)
    examples = encode(frame, None, f"encode {recommender.spec.name}")
    if recommender.gate is not None:  # the user's CF state (data.vectors) picks the experts' weights
        assign_weights(examples, recommender.gate, recommender.data.vectors, set(recommender.warm_users))
    return score_candidates(recommender.rec, examples, batch_size, dtype, "re-rank"), examples


def reasons(recommender: Recommender, examples: list, batch_size: int, max_new_tokens: int,
            min_new_tokens: int, dtype: str, controls: RepetitionControls = RepetitionControls()) -> list[str]:
    """The model's greedy reasoning for `examples` (generation as in the explain stage). Casts the
    whole model to `dtype`, so score first."""
    if not examples:
        return []
    return write_reasoning(recommender.rec, examples, batch_size, max_new_tokens, min_new_tokens, dtype,
                           desc=f"reasons {recommender.spec.name}", controls=controls)
