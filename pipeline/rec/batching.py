"""Batches padded to their longest row, and length bucketing so rows of similar length share one."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np
import torch

from pipeline.rec.examples import RecExample


@dataclass
class RecBatch:
    """A right-padded batch. T = longest row (prompt, plus answer when `with_answers`)."""

    input_ids: torch.Tensor  # (B, T) int64
    attention_mask: torch.Tensor  # (B, T) int64
    prompt_lengths: torch.Tensor  # (B,) answer position = prompt_lengths - 1
    lm_targets: torch.Tensor  # (B, T) next-token target at each position, -100 = none
    labels: torch.Tensor  # (B,) float 0/1
    multi_token: torch.Tensor  # (B,) bool: answer longer than one word (a reasoning trace)
    slot_batch: torch.Tensor  # (N,) row of each CF slot
    slot_position: torch.Tensor  # (N,) position of each CF slot
    slot_vectors: torch.Tensor | None  # (N, d) float32, None for text-only prompts
    expert_weights: torch.Tensor | None = None  # (B, E) per-row expert mixture (fused models), else None

    def to(self, device: torch.device | str) -> "RecBatch":
        """The batch with every tensor on `device` (tensors already there are kept, not copied)."""
        tensors = {f.name: getattr(self, f.name) for f in fields(self)}
        return RecBatch(**{name: None if t is None else t.to(device) for name, t in tensors.items()})


def answer_states(hidden: torch.Tensor, prompt_lengths: torch.Tensor) -> torch.Tensor:
    """(B, H) hidden state of each row's answer position (its last prompt token) from (B, T, H)."""
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    return hidden[rows, prompt_lengths.to(hidden.device) - 1]


def collate(examples: Sequence[RecExample], pad_id: int, with_answers: bool) -> RecBatch:
    """Pad `examples` to the longest; with answers, LM targets cover exactly the answer tokens."""
    rows = [e.prompt_ids + (e.answer_ids if with_answers else []) for e in examples]
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    targets = torch.full((len(rows), width), -100, dtype=torch.long)
    for b, (example, ids) in enumerate(zip(examples, rows)):
        input_ids[b, : len(ids)] = torch.tensor(ids)
        mask[b, : len(ids)] = 1
        if with_answers:
            start = len(example.prompt_ids)
            # position t predicts token t+1: the answer's tokens are predicted from start-1 on
            targets[b, start - 1 : len(ids) - 1] = torch.tensor(example.answer_ids)
    slot_batch = [b for b, e in enumerate(examples) for _ in e.slot_positions]
    slot_position = [p for e in examples for p in e.slot_positions]
    has_vectors = any(e.slot_vectors is not None for e in examples)
    vectors = (
        torch.from_numpy(np.concatenate([e.slot_vectors for e in examples if e.slot_vectors is not None]))
        if has_vectors
        else None
    )
    weights = [e.expert_weights for e in examples]
    if any(w is not None for w in weights) and any(w is None for w in weights):
        raise ValueError("a batch mixes rows with and without expert weights")
    return RecBatch(
        input_ids=input_ids,
        attention_mask=mask,
        prompt_lengths=torch.tensor([len(e.prompt_ids) for e in examples]),
        lm_targets=targets,
        labels=torch.tensor([float(e.label) for e in examples]),
        multi_token=torch.tensor([e.reasoning for e in examples]),
        slot_batch=torch.tensor(slot_batch, dtype=torch.long),
        slot_position=torch.tensor(slot_position, dtype=torch.long),
        slot_vectors=vectors,
        expert_weights=torch.from_numpy(np.stack(weights)).float() if weights and weights[0] is not None else None,
    )


def length_buckets(
    lengths: Sequence[int], batch_size: int, rng: np.random.Generator | None = None
) -> list[list[int]]:
    """Index batches of rows with similar length. With `rng`: rows are shuffled before the stable
    sort (random order among equal lengths) and the batch order is shuffled; without: sorted order."""
    order = np.arange(len(lengths))
    if rng is not None:
        order = rng.permutation(order)
    order = order[np.argsort(np.asarray(lengths)[order], kind="stable")]
    batches = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches
