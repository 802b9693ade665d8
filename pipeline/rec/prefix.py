"""Prefix-cached scoring: run a prompt prefix shared by many rows once, keep its KV cache, and score
each row's remaining tokens (its suffix) against that cache in batches.

Pointwise rows share the system part of the prompt; the top-N candidates of one user share the
whole prompt up to the target (system + user + history). Prompts are tokenized part by part at
their BREAK markers (prompts.py), so prefix + suffix are exactly the tokens of the full prompt.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np
import torch
from transformers import DynamicCache

from pipeline.rec.batching import RecBatch, answer_states, collate, length_buckets
from pipeline.rec.examples import RecExample
from pipeline.rec.model import RecModel

KV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer (keys, values), each (1, heads, P, head_dim)


def split_example(example: RecExample, at: int) -> tuple[RecExample, RecExample]:
    """(prefix, suffix) of `example`'s prompt cut before token `at`; CF slots go with their part
    (suffix slot positions count from the cut). Answers stay empty: prefixes are never trained."""
    slots = np.asarray(example.slot_positions, dtype=np.int64)
    before = slots < at
    vectors = example.slot_vectors
    kinds = np.asarray(example.slot_kinds, dtype=np.int64)

    def part(ids, positions, rows):
        return replace(
            example, prompt_ids=list(ids), answer_ids=[], slot_positions=positions.tolist(),
            slot_vectors=None if vectors is None else vectors[rows],
            slot_kinds=kinds[rows].tolist() if len(kinds) else [], shared_len=0, target_start=0,
        )

    return (
        part(example.prompt_ids[:at], slots[before], before),
        part(example.prompt_ids[at:], slots[~before] - at, ~before),
    )


def prefix_kv(rec: RecModel, prefix: RecExample) -> KV:
    """The KV cache of one prefix (batch 1): per layer (keys, values)."""
    batch = collate([prefix], rec.pad_id, with_answers=False)
    cache = rec.run_body(batch, use_cache=True).past_key_values
    return [(layer.keys, layer.values) for layer in cache.layers]


def suffix_states(rec: RecModel, kv: KV | None, batch: RecBatch) -> torch.Tensor:
    """(B, T, H) last hidden states of the right-padded suffix `batch` continuing the cached prefix
    `kv` (None: no prefix, whole prompts). Gradients flow into `kv` when it was computed with them."""
    batch = batch.to(rec.device)
    if kv is None:
        return rec.run_body(batch, use_cache=False).last_hidden_state
    rows, width = batch.input_ids.shape
    prefix_len = kv[0][0].shape[2]
    cache = DynamicCache()
    for layer, (keys, values) in enumerate(kv):
        cache.update(keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1), layer)
    device = batch.input_ids.device
    mask = torch.cat([torch.ones(rows, prefix_len, dtype=torch.long, device=device), batch.attention_mask], dim=1)
    positions = torch.arange(prefix_len, prefix_len + width, device=device).unsqueeze(0).expand(rows, -1)
    return rec.run_body(
        batch, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=True
    ).last_hidden_state


def suffix_scores(rec: RecModel, kv: KV | None, suffixes: Sequence[RecExample]) -> torch.Tensor:
    """(B,) answer scores of `suffixes` continuing the cached prefix `kv` (None: no prefix, whole
    prompts); suffixes are right-padded, so each row's answer position is its own last token."""
    batch = collate(suffixes, rec.pad_id, with_answers=False)
    return rec.answer_logit(answer_states(suffix_states(rec, kv, batch), batch.prompt_lengths))


def score_shared_prefix(
    rec: RecModel, examples: Sequence[RecExample], cut: int, batch_size: int, desc_progress=None
) -> np.ndarray:
    """Scores of `examples`, which all share their first `cut` prompt tokens (checked): the prefix
    runs once, the suffixes in length-bucketed batches of `batch_size`."""
    if not examples:
        return np.zeros(0, dtype=np.float32)
    head = examples[0].prompt_ids[:cut]
    for example in examples:
        if example.prompt_ids[:cut] != head:
            raise ValueError(f"row {example.row} (user {example.user}) does not share the {cut}-token prefix")
    if cut and not same_expert_weights(examples):
        raise ValueError("rows sharing a prefix must share their expert weights (the prefix's KV depends on them)")
    prefix, _ = split_example(examples[0], cut)
    if prefix.slot_positions:
        _check_prefix_slots(examples, cut)
    kv = prefix_kv(rec, prefix) if cut else None
    suffixes = [split_example(e, cut)[1] for e in examples]
    scores = np.zeros(len(examples), dtype=np.float32)
    for index in length_buckets([len(s.prompt_ids) for s in suffixes], batch_size):
        scores[index] = suffix_scores(rec, kv, [suffixes[i] for i in index]).cpu().numpy()
        if desc_progress is not None:
            desc_progress.update(len(index))
    return scores


def same_expert_weights(examples: Sequence[RecExample]) -> bool:
    """True when every row has the same expert weights (or none has any)."""
    first = examples[0].expert_weights
    return all(
        (e.expert_weights is None and first is None)
        or (e.expert_weights is not None and first is not None and np.array_equal(e.expert_weights, first))
        for e in examples
    )


def _check_prefix_slots(examples: Sequence[RecExample], cut: int) -> None:
    """Rows sharing a prefix must also share the CF vectors written into it."""
    first = split_example(examples[0], cut)[0]
    for example in examples[1:]:
        prefix = split_example(example, cut)[0]
        if prefix.slot_positions != first.slot_positions or not np.array_equal(prefix.slot_vectors, first.slot_vectors):
            raise ValueError(f"row {example.row} (user {example.user}): CF vectors in the shared prefix differ")
