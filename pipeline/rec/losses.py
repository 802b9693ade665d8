"""The recommender's loss: BCE on the "Yes" logit at the first answer position + LM loss on the
answer tokens, weighted by answer length (reasoning traces lean on LM, Yes/No rows on BCE)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from pipeline.rec.batching import RecBatch
from pipeline.rec.model import RecModel
from pipeline.rec.params import LossParams


def rec_loss(
    hidden: torch.Tensor, rec: RecModel, batch: RecBatch, params: LossParams
) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean over answers of w * BCE(answer logit, label) + (1 - w) * mean CE(answer tokens); the
    answer logit is rec.answer_logit (the "Yes" logit, or Yes - No) at the answer's first position.
    An answer is a row, or one target of a pack (its LM tokens are those of `batch.lm_unit`).

    hidden: (B, T, H). lm_head is applied only where a target exists (the answer positions), never
    to the whole (B, T, V) grid. The batch's targets and labels are moved to `hidden`'s device."""
    batch = batch.to(hidden.device)
    targeted = batch.lm_targets != -100  # (B, T)
    logits = rec.lm_head(hidden[targeted]).float()  # (M, V)
    token_ce = F.cross_entropy(logits, batch.lm_targets[targeted], reduction="none")  # (M,)
    unit_of = batch.lm_unit[targeted] if batch.lm_unit is not None else targeted.nonzero()[:, 0]
    units = batch.labels.shape[0]
    ce_sum = torch.zeros(units, device=hidden.device).index_add(0, unit_of, token_ce)
    counts = torch.zeros(units, device=hidden.device).index_add(0, unit_of, torch.ones_like(token_ce))
    lm_unit = ce_sum / counts.clamp_min(1)

    rows, positions = batch.answers
    answer = rec.answer_logit(hidden[rows, positions])  # (N,)
    bce_unit = F.binary_cross_entropy_with_logits(answer, batch.labels, reduction="none")

    w = torch.where(batch.multi_token, params.bce_weight_multi, params.bce_weight_single)
    loss = (w * bce_unit + (1 - w) * lm_unit).mean()
    return loss, {"bce": float(bce_unit.mean().detach()), "lm": float(lm_unit.mean().detach())}
