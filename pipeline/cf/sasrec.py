"""SASRec: a causal self-attention encoder over the user's interaction sequence.

Kang, McAuley: "Self-Attentive Sequential Recommendation", ICDM 2018. The input is a learned
start token followed by the user's earlier items (oldest first), each with its like/dislike label
embedded alongside; the output at the last position is the user state h, and
score(user, target) = <h, e_target>, the item embeddings shared between input and output.
Trained pointwise with BCE. Training and row scoring run on windows of a user's whole sequence
(every position scores the next item, as in the paper), so each row costs one token instead of a
full history encoding; a row sees between max_length/2 and max_length-1 earlier items. `predict`
and the exported user vectors encode a given history (its last max_length-1 items).
"""
from __future__ import annotations

import torch
from torch import nn

from pipeline.cf.config import SASRecConfig


class SASRec(nn.Module):
    name = "sasrec"  # its registry name and params section (cf.sasrec)
    config_class = SASRecConfig
    sequential = True  # trains and scores on windows of user sequences

    @classmethod
    def build(cls, config: SASRecConfig, train, n_users: int, n_items: int) -> "SASRec":
        return cls(n_items, config)

    def __init__(self, n_items: int, config: SASRecConfig):
        super().__init__()
        hidden = config.hidden
        self.max_length = config.max_length  # sequence length including the start token
        self.item_embedding = nn.Embedding(n_items + 1, hidden, padding_idx=0)  # 0 = padding
        self.label_embedding = nn.Embedding(3, hidden, padding_idx=0)  # 0 pad, 1 disliked, 2 liked
        self.start = nn.Parameter(torch.zeros(hidden))
        self.position_embedding = nn.Embedding(config.max_length, hidden)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                hidden, config.heads, dim_feedforward=hidden, dropout=config.dropout,
                batch_first=True, norm_first=True,
            )
            for _ in range(config.blocks)
        )
        self.final_norm = nn.LayerNorm(hidden)
        causal = torch.triu(torch.ones(config.max_length, config.max_length, dtype=torch.bool), 1)
        self.register_buffer("causal_mask", causal, persistent=False)
        nn.init.normal_(self.item_embedding.weight, std=0.1)

    def encode_sequences(self, items: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """States (N, T+1, hidden) after the start token and after each of the right-padded
        (N, T) items (ids + 1) with labels (+ 1); T < max_length. Causal: padding never leaks left."""
        n_rows, length = items.shape
        x = self.item_embedding(items) + self.label_embedding(labels)  # (N, T, hidden)
        x = torch.cat([self.start.expand(n_rows, 1, -1), x], dim=1)  # (N, T+1, hidden)
        x = self.dropout(x + self.position_embedding(torch.arange(length + 1, device=items.device)))
        mask = self.causal_mask[: length + 1, : length + 1]
        for block in self.blocks:
            x = block(x, src_mask=mask)
        return self.final_norm(x)

    def encode(self, history: torch.Tensor, history_labels: torch.Tensor) -> torch.Tensor:
        """User states (B, hidden) from left-padded (B, L) histories: the last max_length-1 items."""
        width = self.max_length - 1
        history, history_labels = history[:, -width:], history_labels[:, -width:]
        counts = (history > 0).sum(1)  # (B,)
        # Move each row's items to the left (right padding) so the state sits at position `counts`.
        shift = torch.arange(history.shape[1], device=history.device) + (history.shape[1] - counts)[:, None]
        inside = shift < history.shape[1]
        shift = shift.clamp(max=history.shape[1] - 1)
        items = torch.gather(history, 1, shift) * inside
        labels = torch.gather(history_labels, 1, shift) * inside
        states = self.encode_sequences(items, labels)
        return states[torch.arange(len(counts)), counts]

    def predict(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        states = self.encode(batch["history"], batch["history_labels"])
        return (states * self.item_embedding(batch["item"] + 1)).sum(-1)  # (B,)

    def predict_windows(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits (N, W) of every target position of a window batch (pipeline.cf.data.user_windows)."""
        states = self.encode_sequences(batch["window_items"], batch["window_labels"])  # (N, W, h)
        return (states * self.item_embedding(batch["target_items"])).sum(-1)

    def calculate_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """BCE over the owned targets (target_rows >= 0) of a window batch."""
        owned = batch["target_rows"] >= 0
        logits = self.predict_windows(batch)
        return nn.functional.binary_cross_entropy_with_logits(logits[owned], batch["target_labels"][owned])

    def user_vectors(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.encode(batch["history"], batch["history_labels"])

    def item_vectors(self) -> torch.Tensor:
        return self.item_embedding.weight[1:]  # (n_items, hidden)
