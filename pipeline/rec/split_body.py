"""The body run in two parts: the lower layers, then the upper ones from the lower part's output.

When only the top L layers change (LoRA experts, a gate over them), the lower layers' output for a
row is the same for every expert, every step and every epoch: compute it once with `lower_states`
and run only `upper_states` per step. The split works on decoders that keep their blocks in
`.layers` and the final norm in `.norm` (the Hugging Face Llama family: Llama, Mistral, Qwen2,
SmolLM); the two parts compose to exactly the full body's output (tests/test_experts.py).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from pipeline.errors import BadParams
from pipeline.rec.batching import RecBatch
from pipeline.rec.fusion import routing
from pipeline.rec.model import RecModel


def layer_count(rec: RecModel) -> int:
    body = rec.body
    if not isinstance(getattr(body, "layers", None), nn.ModuleList) or not hasattr(body, "norm"):
        raise TypeError(f"{type(body).__name__}: splitting needs a decoder with .layers and .norm (Llama family)")
    return len(body.layers)


def upper_layer_indices(rec: RecModel, upper: int) -> range:
    total = layer_count(rec)
    if not 1 <= upper <= total:
        raise BadParams(f"experts.train.upper_layers: {upper} is not in 1..{total}, the backbone's layers")
    return range(total - upper, total)


@contextmanager
def _only_layers(body: nn.Module, chosen: slice, final_norm: bool) -> Iterator[None]:
    layers, norm = body.layers, body.norm
    body.layers = nn.ModuleList(list(layers)[chosen])
    if not final_norm:
        body.norm = nn.Identity()
    try:
        yield
    finally:
        body.layers, body.norm = layers, norm


def lower_states(rec: RecModel, batch: RecBatch, lower: int) -> torch.Tensor:
    """(B, T, H) output of the first `lower` layers (before the final norm) for `batch`."""
    with _only_layers(rec.body, slice(0, lower), final_norm=False):
        return rec.run_body(batch, use_cache=False).last_hidden_state


def upper_states(
    rec: RecModel, hidden: torch.Tensor, attention_mask: torch.Tensor, lower: int,
    expert_weights: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, T, H) last hidden states (final norm applied) from `hidden`, the output of the first
    `lower` layers: runs layers lower.. only, each row routed to its expert mixture when fused.
    `attention_mask` and `position_ids` as the lower pass had them (model.body_mask)."""
    body = rec.body
    attention_mask = attention_mask.to(hidden.device)
    extra = {"position_ids": position_ids.to(hidden.device)} if position_ids is not None else {}
    with _only_layers(body, slice(lower, None), final_norm=True), routing(body, expert_weights):
        return body(inputs_embeds=hidden, attention_mask=attention_mask, use_cache=False, **extra).last_hidden_state
