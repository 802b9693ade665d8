"""The recommender's loss: BCE on the "Yes" logit at the first answer position + LM loss on the
answer tokens, weighted by answer length (reasoning traces lean on LM, Yes/No rows on BCE)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict

from pipeline.rec.batching import RecBatch


class LossParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bce_weight_single: float = 0.9  # rows answered by one word; LM gets 1 - this
    bce_weight_multi: float = 0.1  # rows answered by a reasoning trace; LM gets 1 - this


def rec_loss(
    hidden: torch.Tensor, lm_head: torch.nn.Module, batch: RecBatch, yes_id: int, params: LossParams
) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean over rows of w * BCE(yes logit, label) + (1 - w) * mean CE(answer tokens).

    hidden: (B, T, H). lm_head is applied only where a target exists (the answer positions), never
    to the whole (B, T, V) grid."""
    targeted = batch.lm_targets != -100  # (B, T)
    logits = lm_head(hidden[targeted]).float()  # (N, V)
    token_ce = F.cross_entropy(logits, batch.lm_targets[targeted], reduction="none")  # (N,)
    row_of = targeted.nonzero()[:, 0]
    rows = hidden.shape[0]
    ce_sum = torch.zeros(rows, device=hidden.device).index_add(0, row_of, token_ce)
    counts = torch.zeros(rows, device=hidden.device).index_add(0, row_of, torch.ones_like(token_ce))
    lm_row = ce_sum / counts.clamp_min(1)

    answer_pos = batch.prompt_lengths - 1
    first = hidden[torch.arange(rows), answer_pos]  # (B, H)
    yes_logit = (first @ lm_head.weight[yes_id].to(first.dtype)).float()
    if getattr(lm_head, "bias", None) is not None:
        yes_logit = yes_logit + lm_head.bias[yes_id].float()
    bce_row = F.binary_cross_entropy_with_logits(yes_logit, batch.labels, reduction="none")

    w = torch.where(batch.multi_token, params.bce_weight_multi, params.bce_weight_single)
    loss = (w * bce_row + (1 - w) * lm_row).mean()
    return loss, {"bce": float(bce_row.mean().detach()), "lm": float(lm_row.mean().detach())}
