"""CoLLM's shared MLP projector: CF vector (d) -> 10d -> LLM hidden size, ReLU in between."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from pipeline.artifacts import expect_content, load_torch
from pipeline.rec.examples import ITEM_SLOT, USER_SLOT


class CFProjector(nn.Module):
    """Maps CF vectors to token embeddings. `scale` (a buffer, not trained; one entry per slot kind,
    USER_SLOT and ITEM_SLOT) multiplies the output so projected vectors of either kind start at the
    norm of the LLM's own token embeddings (see calibrate): a sequential CF model's user states are
    about 10x the norm of its item vectors, so one shared scale would start the user slot far off."""

    def __init__(self, cf_dim: int, hidden_size: int, expansion: int = 10):
        super().__init__()
        self.cf_dim, self.hidden_size, self.expansion = cf_dim, hidden_size, expansion
        self.net = nn.Sequential(
            nn.Linear(cf_dim, expansion * cf_dim), nn.ReLU(), nn.Linear(expansion * cf_dim, hidden_size)
        )
        self.register_buffer("scale", torch.ones(2))  # (USER_SLOT, ITEM_SLOT)

    def forward(self, vectors: torch.Tensor, kinds: torch.Tensor | None = None) -> torch.Tensor:
        """(N, d) -> (N, hidden); `kinds` (N,) USER_SLOT / ITEM_SLOT picks each row's scale (None: item)."""
        scale = self.scale[kinds.to(self.scale.device)][:, None] if kinds is not None else self.scale[ITEM_SLOT]
        return self.net(vectors) * scale.to(vectors.dtype)

    @torch.no_grad()
    def calibrate(self, items: torch.Tensor, embedding_weight: torch.Tensor, users: torch.Tensor | None = None
                  ) -> list[float]:
        """Set `scale` so the mean norm of projected sample vectors of each kind (`items`, and
        `users`: user vectors or per-row user states; None = the item scale) equals the mean norm of
        the token embedding rows: an unscaled projector starts far off the embedding scale and the
        soft tokens are then drowned out (or swamp the text) for many steps. Returns the scales."""
        target = embedding_weight.float().norm(dim=-1).mean()

        def scale_for(sample: torch.Tensor) -> float:
            projected = self.net(sample.float().to(self.scale.device)).norm(dim=-1).mean()
            return float(target / projected.clamp_min(1e-8))

        item_scale = scale_for(items)
        self.scale[ITEM_SLOT] = item_scale
        self.scale[USER_SLOT] = scale_for(users) if users is not None else item_scale
        return self.scale.tolist()

    def config(self) -> dict:
        return {"cf_dim": self.cf_dim, "hidden_size": self.hidden_size, "expansion": self.expansion}


def load_projector(path: Path) -> CFProjector:
    """The projector save_rec_model wrote ({"config": ..., "state": ...}); a damaged file, or one
    holding anything else, is an UnreadableArtifact naming `path`."""
    saved = load_torch(path)
    with expect_content(path, "a CF projector checkpoint"):
        projector = CFProjector(**saved["config"])
        projector.load_state_dict(saved["state"])
    return projector
