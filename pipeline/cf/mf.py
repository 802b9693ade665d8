"""Matrix factorization without bias terms, trained pointwise.

Koren, Bell, Volinsky: "Matrix Factorization Techniques for Recommender Systems", IEEE Computer
2009. score(u, i) = <p_u, q_i>; loss = BCE-with-logits against the interaction label.
"""
from __future__ import annotations

import torch
from torch import nn

from pipeline.cf.config import MFConfig


class MF(nn.Module):
    name = "mf"  # its registry name and params section (cf.mf)
    config_class = MFConfig
    sequential = False  # scores a row from (user, item) alone

    @classmethod
    def build(cls, config: MFConfig, train, n_users: int, n_items: int) -> "MF":
        return cls(n_users, n_items, config)

    def __init__(self, n_users: int, n_items: int, config: MFConfig):
        super().__init__()
        self.user_embedding = nn.Embedding(n_users, config.dim)
        self.item_embedding = nn.Embedding(n_items, config.dim)
        nn.init.normal_(self.user_embedding.weight, std=0.1)
        nn.init.normal_(self.item_embedding.weight, std=0.1)

    def predict(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits (B,) for batch["user"], batch["item"] (B,)."""
        users = self.user_embedding(batch["user"])  # (B, d)
        items = self.item_embedding(batch["item"])  # (B, d)
        return (users * items).sum(-1)

    def calculate_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return nn.functional.binary_cross_entropy_with_logits(self.predict(batch), batch["label"])

    def user_vectors(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.user_embedding(batch["user"])  # (B, d)

    def item_vectors(self) -> torch.Tensor:
        return self.item_embedding.weight  # (n_items, d)
