"""One-pass scoring: the "Yes" logit at the answer position from a single forward pass.

The body runs once over the prompt; only the hidden state at the last prompt position goes through
lm_head (one row of it, in fact). No generate(), no logits over the whole sequence.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from pipeline.rec.batching import RecBatch, collate, length_buckets
from pipeline.rec.examples import RecExample
from pipeline.rec.model import RecModel


def yes_logits(rec: RecModel, batch: RecBatch) -> torch.Tensor:
    """(B,) float32 answer score (rec.answer_logit: the "Yes" logit, or Yes - No) at each row's first
    answer position."""
    hidden = rec.hidden_states(batch)  # (B, T, H)
    last = hidden[torch.arange(hidden.shape[0]), batch.prompt_lengths - 1]  # (B, H)
    return rec.answer_logit(last)


def autocast_context(dtype: str):
    """bf16 autocast on CPU for "bfloat16", nothing for "float32"."""
    if dtype == "bfloat16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    if dtype == "float32":
        return nullcontext()
    raise ValueError(f"dtype must be bfloat16 or float32, got {dtype!r}")


@torch.no_grad()
def score_examples(
    rec: RecModel, examples: Sequence[RecExample], batch_size: int, dtype: str = "bfloat16", desc: str = "score"
) -> np.ndarray:
    """Answer scores (see yes_logits) of `examples` (prompts only), in their order; batches are
    length-bucketed."""
    was_training = rec.training
    rec.eval()
    scores = np.zeros(len(examples), dtype=np.float32)
    batches = length_buckets([len(e.prompt_ids) for e in examples], batch_size)
    with autocast_context(dtype):
        for index in tqdm(batches, desc=desc, leave=False):
            batch = collate([examples[i] for i in index], rec.pad_id, with_answers=False)
            scores[index] = yes_logits(rec, batch).numpy()
    rec.train(was_training)
    return scores


def generation_inputs(rec: RecModel, examples: Sequence[RecExample]) -> dict[str, torch.Tensor]:
    """Left-padded `inputs_embeds` + `attention_mask` of the prompts (CF soft tokens included), ready
    for `rec.llm.generate(**inputs, ...)` (e.g. to write explanations)."""
    batch = collate(examples, rec.pad_id, with_answers=False)
    embeds = rec.input_embeddings(batch)  # (B, T, H), right-padded
    lengths = batch.prompt_lengths
    width = int(lengths.max())
    left = torch.zeros_like(embeds)
    mask = torch.zeros_like(batch.attention_mask)
    for b, n in enumerate(lengths.tolist()):
        left[b, width - n :] = embeds[b, :n]
        mask[b, width - n :] = 1
    return {"inputs_embeds": left, "attention_mask": mask}
