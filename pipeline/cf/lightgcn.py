"""LightGCN: embeddings smoothed over the user-item graph, no transforms or non-linearities.

He et al.: "LightGCN: Simplifying and Powering Graph Convolution Network for Recommendation",
SIGIR 2020. The graph holds the TRAIN positives; propagation uses the symmetric normalization
D^-1/2 A D^-1/2 and the final embedding is the mean over layers 0..L. Trained pointwise with BCE.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pipeline.cf.config import LightGCNConfig


def normalized_adjacency(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> torch.Tensor:
    """Sparse (U+I, U+I) matrix D^-1/2 A D^-1/2 of the bipartite graph with edges (users, items)."""
    pairs = np.unique(np.stack([users, items], axis=1), axis=0)
    rows = np.concatenate([pairs[:, 0], pairs[:, 1] + n_users])
    cols = np.concatenate([pairs[:, 1] + n_users, pairs[:, 0]])
    n_nodes = n_users + n_items
    degree = np.bincount(rows, minlength=n_nodes).astype(np.float64)
    inv_sqrt = np.zeros(n_nodes)
    inv_sqrt[degree > 0] = degree[degree > 0] ** -0.5
    values = inv_sqrt[rows] * inv_sqrt[cols]
    indices = torch.from_numpy(np.stack([rows, cols])).long()
    return torch.sparse_coo_tensor(
        indices, torch.from_numpy(values).float(), (n_nodes, n_nodes), check_invariants=True
    ).coalesce()


class LightGCN(nn.Module):
    name = "lightgcn"  # its registry name and params section (cf.lightgcn)
    config_class = LightGCNConfig
    sequential = False  # scores a row from (user, item) alone, over the graph of TRAIN positives

    @classmethod
    def build(cls, config: LightGCNConfig, train, n_users: int, n_items: int) -> "LightGCN":
        """`train`: the TRAIN rows, whose liked pairs make the graph."""
        liked = train[train["label"] == 1]
        adjacency = normalized_adjacency(liked["user"].to_numpy(), liked["item"].to_numpy(), n_users, n_items)
        return cls(n_users, n_items, adjacency, config)

    def __init__(self, n_users: int, n_items: int, adjacency: torch.Tensor, config: LightGCNConfig):
        super().__init__()
        self.n_users = n_users
        self.layers = config.layers
        self.register_buffer("adjacency", adjacency, persistent=False)
        self.embedding = nn.Embedding(n_users + n_items, config.dim)  # users first, then items
        nn.init.normal_(self.embedding.weight, std=0.1)

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final (n_users, d) and (n_items, d) embeddings: mean of the L+1 propagation layers."""
        layer = self.embedding.weight
        total = layer
        for _ in range(self.layers):
            layer = torch.sparse.mm(self.adjacency, layer)
            total = total + layer
        final = total / (self.layers + 1)
        return final[: self.n_users], final[self.n_users :]

    def predict(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        users, items = self.propagate()
        return (users[batch["user"]] * items[batch["item"]]).sum(-1)  # (B,)

    def calculate_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return nn.functional.binary_cross_entropy_with_logits(self.predict(batch), batch["label"])

    def user_vectors(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.propagate()[0][batch["user"]]

    def item_vectors(self) -> torch.Tensor:
        return self.propagate()[1]
