"""CoLLM's shared MLP projector: CF vector (d) -> 10d -> LLM hidden size, ReLU in between."""
from __future__ import annotations

import torch
from torch import nn


class CFProjector(nn.Module):
    """Maps CF vectors to token embeddings. `scale` (a buffer, not trained) multiplies the output so
    projected vectors start at the norm of the LLM's own token embeddings (see calibrate)."""

    def __init__(self, cf_dim: int, hidden_size: int, expansion: int = 10):
        super().__init__()
        self.cf_dim, self.hidden_size, self.expansion = cf_dim, hidden_size, expansion
        self.net = nn.Sequential(
            nn.Linear(cf_dim, expansion * cf_dim), nn.ReLU(), nn.Linear(expansion * cf_dim, hidden_size)
        )
        self.register_buffer("scale", torch.ones(()))

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        """(N, d) -> (N, hidden)."""
        return self.net(vectors) * self.scale

    @torch.no_grad()
    def calibrate(self, sample_vectors: torch.Tensor, embedding_weight: torch.Tensor) -> float:
        """Set `scale` so the mean norm of projected `sample_vectors` equals the mean norm of the
        token embedding rows: an unscaled projector starts far off the embedding scale and the
        soft tokens are then drowned out (or swamp the text) for many steps. Returns the scale."""
        self.scale.fill_(1.0)
        projected = self.net(sample_vectors.float().to(self.scale.device)).norm(dim=-1).mean()
        target = embedding_weight.float().norm(dim=-1).mean()
        self.scale.fill_(float(target / projected.clamp_min(1e-8)))
        return float(self.scale)

    def config(self) -> dict:
        return {"cf_dim": self.cf_dim, "hidden_size": self.hidden_size, "expansion": self.expansion}
