"""One-pass scoring: the answer logit at the answer position from a single forward pass.

The body runs once over each prompt, with the prompt prefix that rows share computed once (the
system part for pointwise rows, the whole history for one user's top-N candidates; prefix.py).
Only the hidden state at the last prompt position meets lm_head, and only its Yes/No rows, in fp32
(RecModel.answer_logit). No generate(), no logits over the whole sequence.
"""
from __future__ import annotations

from itertools import groupby
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from pipeline.rec.batching import RecBatch, answer_states, collate
from pipeline.rec.examples import RecExample
from pipeline.rec.model import RecModel, use_precision
from pipeline.rec.prefix import same_expert_weights, score_shared_prefix


def yes_logits(rec: RecModel, batch: RecBatch) -> torch.Tensor:
    """(B,) float32 answer score (rec.answer_logit: the "Yes" logit, or Yes - No) at each row's first
    answer position, from a full pass over each prompt."""
    hidden = rec.hidden_states(batch)  # (B, T, H)
    return rec.answer_logit(answer_states(hidden, batch.prompt_lengths))


@torch.no_grad()
def score_examples(
    rec: RecModel, examples: Sequence[RecExample], batch_size: int, dtype: str = "bfloat16", desc: str = "score"
) -> np.ndarray:
    """Answer scores (see yes_logits) of `examples` (prompts only), in their order, with the frozen
    weights in `dtype` (use_precision). The system part they all share runs once; the rest in
    length-bucketed batches. Rows routed to different expert mixtures share nothing (the system
    part's keys and values depend on each row's mixture)."""
    cuts = {e.shared_len for e in examples}
    if len(cuts) > 1:
        raise ValueError(f"rows disagree on the length of the shared system prompt: {sorted(cuts)[:3]}")
    cut = cuts.pop() if cuts and same_expert_weights(examples) else 0
    use_precision(rec, dtype)
    with _scoring_mode(rec), tqdm(total=len(examples), desc=desc, leave=False) as bar:
        return score_shared_prefix(rec, examples, cut, batch_size, bar)


@torch.no_grad()
def score_candidates(
    rec: RecModel, examples: Sequence[RecExample], batch_size: int, dtype: str = "bfloat16", desc: str = "top-N"
) -> np.ndarray:
    """Scores of top-N candidate prompts, in their order. Consecutive examples of one user share
    everything before the target (topn_frame gives them one history): that prefix runs once per
    user and each candidate costs only its target tokens."""
    scores = np.zeros(len(examples), dtype=np.float32)
    start = 0
    use_precision(rec, dtype)
    with _scoring_mode(rec), tqdm(total=len(examples), desc=desc, leave=False) as bar:
        for _, group in groupby(examples, key=lambda e: e.user):
            group = list(group)
            cut = group[0].target_start
            scores[start : start + len(group)] = score_shared_prefix(rec, group, cut, batch_size, bar)
            start += len(group)
    return scores


class _scoring_mode:
    """eval() for the duration, the previous train/eval mode restored after."""

    def __init__(self, rec: RecModel):
        self.rec = rec

    def __enter__(self):
        self.was_training = self.rec.training
        self.rec.eval()

    def __exit__(self, *exc):
        self.rec.train(self.was_training)


def generation_inputs(rec: RecModel, examples: Sequence[RecExample]) -> dict[str, torch.Tensor]:
    """Left-padded `inputs_embeds` + `attention_mask` of the prompts (CF soft tokens included), ready
    for `rec.llm.generate(**inputs, ...)` (e.g. to write explanations), on the model's device."""
    batch = collate(examples, rec.pad_id, with_answers=False).to(rec.device)
    embeds = rec.input_embeddings(batch)  # (B, T, H), right-padded
    lengths = batch.prompt_lengths
    width = int(lengths.max())
    left = torch.zeros_like(embeds)
    mask = torch.zeros_like(batch.attention_mask)
    for b, n in enumerate(lengths.tolist()):
        left[b, width - n :] = embeds[b, :n]
        mask[b, width - n :] = 1
    return {"inputs_embeds": left, "attention_mask": mask}
