"""Batches padded to their longest row, and length bucketing so rows of similar length share one."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np
import torch

from pipeline.rec.examples import ITEM_SLOT, RecExample
from pipeline.rec.packing import Pack


@dataclass
class RecBatch:
    """A right-padded batch of B sequences, T = the longest. A sequence is one prompt (plus its
    answer when `with_answers`), or a pack (packing.py): one shared prefix then K targets, each
    with its answer. N = the answers (units) in the batch: N = B without packing."""

    input_ids: torch.Tensor  # (B, T) int64
    attention_mask: torch.Tensor  # (B, T) int64
    prompt_lengths: torch.Tensor  # (B,) unpacked rows: answer position = prompt_lengths - 1
    lm_targets: torch.Tensor  # (B, T) next-token target at each position, -100 = none
    labels: torch.Tensor  # (N,) float 0/1
    multi_token: torch.Tensor  # (N,) bool: answer longer than one word (a reasoning trace)
    slot_batch: torch.Tensor  # (S,) row of each CF slot
    slot_position: torch.Tensor  # (S,) position of each CF slot
    slot_vectors: torch.Tensor | None  # (S, d) float32, None for text-only prompts
    expert_weights: torch.Tensor | None = None  # (B, E) per-row expert mixture (fused models), else None
    slot_kind: torch.Tensor | None = None  # (S,) USER_SLOT / ITEM_SLOT of each CF slot
    answer_row: torch.Tensor | None = None  # (N,) the sequence of each answer (None: arange(B))
    answer_position: torch.Tensor | None = None  # (N,) its answer position (None: prompt_lengths - 1)
    lm_unit: torch.Tensor | None = None  # (B, T) the answer each LM target belongs to, -1 = none
    segments: torch.Tensor | None = None  # (B, T) packs: 0 prefix, k target k, -1 pad; None = plain causal
    position_ids: torch.Tensor | None = None  # (B, T) packs: each target's positions continue the prefix

    def to(self, device: torch.device | str) -> "RecBatch":
        """The batch with every tensor on `device` (tensors already there are kept, not copied)."""
        tensors = {f.name: getattr(self, f.name) for f in fields(self)}
        return RecBatch(**{name: None if t is None else t.to(device) for name, t in tensors.items()})

    @property
    def answers(self) -> tuple[torch.Tensor, torch.Tensor]:
        """((N,) sequence, (N,) position) of every answer position in the batch."""
        if self.answer_row is not None:
            return self.answer_row, self.answer_position
        rows = torch.arange(self.input_ids.shape[0], device=self.input_ids.device)
        return rows, self.prompt_lengths.to(rows.device) - 1


def answer_states(hidden: torch.Tensor, prompt_lengths: torch.Tensor) -> torch.Tensor:
    """(B, H) hidden state of each row's answer position (its last prompt token) from (B, T, H)."""
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    return hidden[rows, prompt_lengths.to(hidden.device) - 1]


def collate(examples: Sequence[RecExample], pad_id: int, with_answers: bool) -> RecBatch:
    """Pad `examples` to the longest; with answers, LM targets cover exactly the answer tokens."""
    if with_answers:
        return collate_packs([Pack([e]) for e in examples], pad_id)
    return _collate([Pack([e]) for e in examples], pad_id, with_answers=False)


def collate_packs(packs: Sequence[Pack], pad_id: int) -> RecBatch:
    """Pad `packs` (with their answers) to the longest. Packs of one row give exactly collate's
    batch of those rows; longer packs add segment ids and position ids (packing.py)."""
    return _collate(packs, pad_id, with_answers=True)


def _collate(packs: Sequence[Pack], pad_id: int, with_answers: bool) -> RecBatch:
    sequences = [_pack_layout(p, with_answers) for p in packs]
    width = max(len(s["ids"]) for s in sequences)
    rows = len(sequences)
    input_ids = torch.full((rows, width), pad_id, dtype=torch.long)
    mask = torch.zeros((rows, width), dtype=torch.long)
    targets = torch.full((rows, width), -100, dtype=torch.long)
    lm_unit = torch.full((rows, width), -1, dtype=torch.long)
    segments = torch.full((rows, width), -1, dtype=torch.long)
    positions = torch.zeros((rows, width), dtype=torch.long)
    for b, layout in enumerate(sequences):
        n = len(layout["ids"])
        input_ids[b, :n] = torch.tensor(layout["ids"])
        mask[b, :n] = 1
        segments[b, :n] = torch.tensor(layout["segments"])
        positions[b, :n] = torch.tensor(layout["positions"])
        for position, token, unit in layout["targets"]:
            targets[b, position], lm_unit[b, position] = token, unit
    units = [u for layout in sequences for u in layout["units"]]
    answer_row = torch.tensor([b for b, layout in enumerate(sequences) for _ in layout["units"]], dtype=torch.long)
    answer_position = torch.tensor([u["position"] for u in units], dtype=torch.long)
    # unit ids were numbered per sequence: offset them into the batch's answer numbering
    offsets = torch.tensor(np.cumsum([0] + [len(s["units"]) for s in sequences[:-1]]), dtype=torch.long)
    lm_unit = torch.where(lm_unit >= 0, lm_unit + offsets[:, None], lm_unit)
    slots = [(b, position, vector, kind) for b, layout in enumerate(sequences) for position, vector, kind in layout["slots"]]
    has_vectors = any(vector is not None for _, _, vector, _ in slots)
    weights = [p.anchor.expert_weights for p in packs]
    if any(w is not None for w in weights) and any(w is None for w in weights):
        raise ValueError("a batch mixes rows with and without expert weights")
    packed = any(len(p.targets) > 1 for p in packs)
    return RecBatch(
        input_ids=input_ids,
        attention_mask=mask,
        prompt_lengths=torch.tensor([len(p.anchor.prompt_ids) for p in packs]),
        lm_targets=targets,
        labels=torch.tensor([float(u["label"]) for u in units]),
        multi_token=torch.tensor([u["reasoning"] for u in units], dtype=torch.bool),
        slot_batch=torch.tensor([b for b, _, _, _ in slots], dtype=torch.long),
        slot_position=torch.tensor([p for _, p, _, _ in slots], dtype=torch.long),
        slot_vectors=torch.from_numpy(np.stack([v for _, _, v, _ in slots])) if has_vectors else None,
        expert_weights=torch.from_numpy(np.stack(weights)).float() if weights and weights[0] is not None else None,
        slot_kind=torch.tensor([k for _, _, _, k in slots], dtype=torch.long) if has_vectors else None,
        answer_row=answer_row,
        answer_position=answer_position,
        lm_unit=lm_unit,
        segments=segments if packed else None,
        position_ids=positions if packed else None,
    )


def _pack_layout(pack: Pack, with_answers: bool) -> dict:
    """One sequence of `pack`: token ids, segment and position ids, answer units, LM targets
    (position, token, unit) and CF slots (position, vector, kind)."""
    anchor, cut = pack.anchor, pack.prefix_len
    ids, segments, positions = list(anchor.prompt_ids[:cut]), [0] * cut, list(range(cut))
    slots = [_slot(anchor, k) for k, p in enumerate(anchor.slot_positions) if p < cut]
    units, targets = [], []
    for index, target in enumerate(pack.targets):
        if target.user != anchor.user:
            raise ValueError(f"a pack mixes users {anchor.user} and {target.user} (row {target.row})")
        start, own_cut = len(ids), pack.cut(target)
        prompt_tail = target.prompt_ids[own_cut:]
        answer = target.answer_ids if with_answers else []
        slots += [(start + p - own_cut, *_slot(target, k)[1:])
                  for k, p in enumerate(target.slot_positions) if p >= own_cut]
        answer_at = start + len(prompt_tail) - 1  # the last prompt token predicts the answer
        units.append({"position": answer_at, "label": target.label, "reasoning": target.reasoning})
        targets += [(answer_at + j, token, index) for j, token in enumerate(answer)]
        ids += prompt_tail + answer
        segments += [index + 1] * (len(prompt_tail) + len(answer))
        positions += list(range(cut, cut + len(prompt_tail) + len(answer)))
    return {"ids": ids, "segments": segments, "positions": positions, "units": units, "targets": targets,
            "slots": slots}


def _slot(example: RecExample, k: int) -> tuple[int, np.ndarray | None, int]:
    vector = example.slot_vectors[k] if example.slot_vectors is not None else None
    kind = example.slot_kinds[k] if example.slot_kinds else ITEM_SLOT
    return example.slot_positions[k], vector, kind


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
