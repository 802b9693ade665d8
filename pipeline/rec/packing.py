"""Several targets after one history: a user's consecutive train rows packed into one sequence.

A pack is the anchor row's prompt up to its target (system part, user and CF user slot, history),
then each target's own tail (target line, CF item slot, chat tail) followed by its answer:

    [system + user + history of the anchor] [target 1 + answer 1] [target 2 + answer 2] ...

Every target sees the prefix and itself only (segment mask, `packed_attention_mask`), and its
positions continue from the prefix as if it stood alone, so in eval mode a target's answer logit is
the one its own single-row prompt on the anchor's history gives (tests/test_rec_packing.py).
Gradients of every target flow through the one shared prefix. Later targets of a block see the
anchor's history, which lacks the block's own earlier rows: a deliberate approximation that only
training makes (evaluation rows keep their exact histories). A pack of one row is that row exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from pipeline.rec.examples import RecExample
from pipeline.rec.params import PackingParams


@dataclass
class Pack:
    """Targets of one user that share the first target's (the anchor's) history prefix."""

    targets: list[RecExample]

    @property
    def anchor(self) -> RecExample:
        return self.targets[0]

    @property
    def prefix_len(self) -> int:
        return self.anchor.target_start if len(self.targets) > 1 else 0

    def cut(self, target: RecExample) -> int:
        """Where `target`'s own prompt leaves the shared prefix: its target part starts there
        (a packed target's own history is never shown; the anchor's is)."""
        return target.target_start if len(self.targets) > 1 else 0

    def tail(self, target: RecExample) -> list[int]:
        """The tokens of `target` after the shared prefix: its target part and its answer."""
        return target.prompt_ids[self.cut(target) :] + target.answer_ids

    @property
    def length(self) -> int:
        return self.prefix_len + sum(len(self.tail(t)) for t in self.targets)

    @property
    def rows(self) -> list[int]:
        return [t.row for t in self.targets]


def label_blocks(frame: pd.DataFrame, targets: int, max_span_seconds: int) -> list[list[int]]:
    """Interaction rows of `frame` (INTERACTIONS columns) grouped into blocks: a user's consecutive
    rows (by timestamp, then row) of at most `targets` rows, each within `max_span_seconds` of the
    block's first row. Blocks are in user, then time order (deterministic)."""
    ordered = frame.sort_values(["user", "timestamp", "row"], kind="stable")
    users, times, rows = (ordered[c].to_numpy() for c in ("user", "timestamp", "row"))
    blocks: list[list[int]] = []
    for index in range(len(rows)):
        current = blocks[-1] if blocks else None
        if (current is not None and users[index] == users[start] and len(current) < targets
                and times[index] - times[start] <= max_span_seconds):
            current.append(int(rows[index]))
        else:
            blocks.append([int(rows[index])])
            start = index
    return blocks


def disjoint_shares(blocks: Sequence[Sequence[int]], counts: Sequence[int], seed: int) -> list[list[list[int]]]:
    """The blocks shuffled by `seed`, then cut into consecutive shares of exactly counts[i] rows
    each (the block at a cut is split): share i and share j never hold the same row."""
    order = np.random.default_rng(seed).permutation(len(blocks))
    needed = sum(counts)
    available = sum(len(b) for b in blocks)
    if needed > available:
        raise ValueError(f"the train split has {available} rows, the stages ask for {needed} ({list(counts)})")
    shares: list[list[list[int]]] = [[] for _ in counts]
    share, room = 0, counts[0]
    for index in order:
        block = list(blocks[index])
        while block and share < len(counts):
            taken, block = block[:room], block[room:]
            shares[share].append(taken)
            room -= len(taken)
            if room == 0:
                share += 1
                room = counts[share] if share < len(counts) else 0
        if share >= len(counts):
            break
    return shares


def packs_of(examples: Sequence[RecExample], blocks: Sequence[Sequence[int]]) -> list[Pack]:
    """One Pack per block, from `examples` (one per row of the blocks, e.g. build_examples' output)."""
    by_row = {e.row: e for e in examples}
    return [Pack([by_row[row] for row in block]) for block in blocks]


def singletons(examples: Sequence[RecExample]) -> list[Pack]:
    return [Pack([e]) for e in examples]


def packed_attention_mask(segments: torch.Tensor) -> torch.Tensor:
    """(B, 1, T, T) bool mask from (B, T) segment ids (0 = shared prefix, k >= 1 = target k,
    -1 = padding): a query sees earlier keys of the prefix and of its own segment. Every query sees
    itself, so a padding row is never empty (an all-False row would give NaN in attention)."""
    width = segments.shape[1]
    causal = torch.ones(width, width, dtype=torch.bool, device=segments.device).tril()
    query, key = segments[:, :, None], segments[:, None, :]  # (B, T, 1), (B, 1, T)
    allowed = ((key == 0) | (key == query)) & (key >= 0) & (query >= 0) & causal
    allowed |= torch.eye(width, dtype=torch.bool, device=segments.device)
    return allowed[:, None]
