"""Writing projected CF vectors into the placeholder positions of a batch's input embeddings."""
from __future__ import annotations

import torch


def embed_with_soft_tokens(
    embedding: torch.nn.Module,
    input_ids: torch.Tensor,
    slot_batch: torch.Tensor,
    slot_position: torch.Tensor,
    projected: torch.Tensor | None,
) -> torch.Tensor:
    """Token embeddings (B, T, H) of `input_ids` (B, T) with row `slot_batch[k]`, position
    `slot_position[k]` replaced by `projected[k]` (N, H); every other position is untouched."""
    embeds = embedding(input_ids)
    if projected is None or slot_batch.numel() == 0:
        return embeds
    embeds = embeds.clone()  # the embedding output may be a leaf view; keep autograd happy
    embeds[slot_batch, slot_position] = projected.to(embeds.dtype)
    return embeds
