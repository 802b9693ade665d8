"""Per-row LoRA expert fusion: every row of a batch gets its own weighted sum of E experts' updates.

A fused layer holds the frozen base Linear and all experts' LoRA factors, A (E, r, in) and
B (E, out, r). For a row with expert weights w (E,) it computes

    base(x) + scaling * sum_k w_k B_k A_k x

exactly: the rank-r products are weighted per expert, never A and B separately (a weighted average
of A's and of B's is not the weighted sum of the experts' updates). Rows of one batch may belong to
different users with different weights; weights are set for a forward pass with `routing`.
The same combination, merged once for a fixed w, is peft's `add_weighted_adapter(...,
combination_type="cat")`: A = concat_k(w_k * scaling * A_k), B = concat_k(B_k) (mixture_factors).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


class ExpertLoRALinear(nn.Module):
    """base(x) + scaling * sum_k w[b, k] * B_k A_k x for each row b (weights set by `routing`)."""

    def __init__(self, base: nn.Module, lora_a: torch.Tensor, lora_b: torch.Tensor, scaling: float):
        super().__init__()
        experts, rank, _ = lora_a.shape
        if lora_b.shape[0] != experts or lora_b.shape[2] != rank:
            raise ValueError(f"expert factors disagree: A {tuple(lora_a.shape)}, B {tuple(lora_b.shape)}")
        self.base = base
        # (in, E*r) and (E*r, out): two matmuls for all experts at once
        self.register_buffer("a_cat", lora_a.reshape(experts * rank, -1).T.contiguous().float())
        self.register_buffer("b_cat", lora_b.permute(0, 2, 1).reshape(experts * rank, -1).contiguous().float())
        self.experts, self.rank, self.scaling = experts, rank, float(scaling)
        self.weights: torch.Tensor | None = None  # (B, E), set by routing()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if self.weights is None:
            raise RuntimeError("a fused expert layer ran without routing weights (use pipeline.rec.fusion.routing)")
        rows = x.shape[0]
        weights = self.weights
        if weights.shape[0] != rows:
            if weights.shape[0] != 1:
                raise ValueError(f"routing weights for {weights.shape[0]} rows, batch has {rows}")
            weights = weights.expand(rows, -1)
        low = x.to(self.a_cat.dtype) @ self.a_cat  # (B, T, E*r)
        scale = (weights * self.scaling).to(low.dtype)  # the factors' dtype (bf16 after a whole-model cast)
        low = low.view(*low.shape[:-1], self.experts, self.rank) * scale[:, None, :, None]
        delta = low.reshape(*low.shape[:-2], self.experts * self.rank) @ self.b_cat  # (B, T, out)
        return out + delta.to(out.dtype)


def fused_layers(module: nn.Module) -> list[ExpertLoRALinear]:
    return [m for m in module.modules() if isinstance(m, ExpertLoRALinear)]


@contextmanager
def routing(module: nn.Module, weights: torch.Tensor | None) -> Iterator[None]:
    """Every fused layer inside `module` uses `weights` (B, E) (row b's expert weights) for the
    duration; a model without fused layers ignores them, a model with fused layers needs them."""
    layers = fused_layers(module)
    if not layers:
        yield
        return
    if weights is None:
        raise ValueError("this model fuses LoRA experts per row: the batch needs expert weights")
    weights = weights.float().to(layers[0].a_cat.device)  # e.g. a CPU gate's output for a CUDA model
    if weights.ndim != 2 or weights.shape[1] != layers[0].experts:
        raise ValueError(f"expert weights must be (rows, {layers[0].experts}), got {tuple(weights.shape)}")
    for layer in layers:
        layer.weights = weights
    try:
        yield
    finally:
        for layer in layers:
            layer.weights = None


def mixture_factors(
    lora_a: torch.Tensor, lora_b: torch.Tensor, scaling: float, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, B) of one rank-E*r LoRA (scaling 1) equal to the mixture `weights` (E,) of the experts
    (A (E, r, in), B (E, out, r)): what a serving engine taking one LoRA per request loads for a
    user with these weights (peft's "cat" combination)."""
    experts = lora_a.shape[0]
    a = torch.cat([lora_a[k] * weights[k] * scaling for k in range(experts)], dim=0)  # (E*r, in)
    b = torch.cat([lora_b[k] for k in range(experts)], dim=1)  # (out, E*r)
    return a, b
