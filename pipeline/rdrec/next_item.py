"""RDRec's sequential task: the student predicts a user's next item from their history, the items
being tokens it can emit.

RDRec's T5 student writes an item's ID as whole-word tokens. Here an item already is a token of the
student: its CF soft token, projector(CF item vector), is what an item slot of a prompt holds. The
next-item head uses that same vector as the item's output embedding, as SmolLM2 ties each token's
input and output embedding: at the last prompt token of a `next` prompt (tasks.py) the hidden state
h (H,) gives item i the logit h . projector(v_i) / sqrt(H), over the whole catalogue at once. No
parameters are added (the projector and the LoRA learn it), training is softmax cross-entropy over
the catalogue for the true next item, and ranking the catalogue costs one prompt per user plus an
(H x n_items) product, where decoding whole-word IDs would score every item's tokens per user.

The 1 / sqrt(H) (as in scaled dot-product attention): the projector matches item tokens to the
norm of the token embeddings, and the raw products spread the catalogue so far that the softmax
starts saturated (SmolLM2-135M on the default: cross-entropy 19 at the first step against
log(1,682) = 7.4 for a uniform guess) and swung between 14 and 42 over 48 next-only steps; scaled,
it starts at 7.5 and was 6.7 after the ablation's 48 next steps (docs/rdrec.md, "Next-item
prediction").
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from pipeline.rec.batching import RecBatch, answer_states, collate, length_buckets
from pipeline.rec.examples import RecExample
from pipeline.rec.model import RecModel, use_precision
from pipeline.rec.packing import Pack
from pipeline.rec.prefix import prefix_kv, split_example, suffix_states
from pipeline.ranking.catalogue import TASKS, RankingUsers
from pipeline.ranking.ranks import catalogue_ranks
from pipeline.rdrec.tasks import TaskEncoder


class NextItemHead:
    """Catalogue logits from answer-position hidden states, against the projected item vectors."""

    def __init__(self, item_vectors: np.ndarray):
        self.vectors = torch.from_numpy(np.ascontiguousarray(item_vectors, dtype=np.float32))  # (I, d)

    def logits(self, rec: RecModel, hidden: torch.Tensor) -> torch.Tensor:
        """(N, I) float32 logits of every item from (N, H) hidden states, autocast off (as
        RecModel.answer_logit: bf16 would tie most of the catalogue)."""
        with torch.autocast(hidden.device.type, enabled=False):
            items = rec.projector(self.vectors.to(hidden.device))  # (I, H), the item slots' soft tokens
            return hidden.float() @ items.float().T / math.sqrt(items.shape[1])

    def loss(self, hidden: torch.Tensor, rec: RecModel, batch: RecBatch, packs: list[Pack]
             ) -> tuple[torch.Tensor, dict[str, float]]:
        """Mean cross-entropy over the catalogue of each answer's item (a pipeline.rec.training
        TaskLoss for the `next` micro-batches); hidden (B, T, H). Reported as the step's `lm`: the
        language-model loss over the item tokens."""
        rows, positions = batch.to(hidden.device).answers
        targets = torch.tensor([t.item for p in packs for t in p.targets], device=hidden.device)
        ce = F.cross_entropy(self.logits(rec, hidden[rows, positions]), targets)
        return ce, {"bce": 0.0, "lm": float(ce.detach())}


@torch.no_grad()
def prompt_states(rec: RecModel, examples: Sequence[RecExample], batch_size: int, dtype: str) -> torch.Tensor:
    """(N, H) float32 hidden states at the last prompt token of `examples` (prompts only, in their
    order), eval mode: the system part they share runs once, the rest in length-bucketed batches."""
    if not examples:
        return torch.zeros(0, rec.lm_head.weight.shape[1])
    cut = examples[0].shared_len
    if any(e.shared_len != cut or e.prompt_ids[:cut] != examples[0].prompt_ids[:cut] for e in examples):
        raise ValueError("next-item prompts disagree on the shared system part")
    was_training = rec.training
    rec.eval()
    use_precision(rec, dtype)
    kv = prefix_kv(rec, split_example(examples[0], cut)[0]) if cut else None
    suffixes = [split_example(e, cut)[1] for e in examples]
    states = torch.zeros(len(examples), rec.lm_head.weight.shape[1])
    for index in length_buckets([len(s.prompt_ids) for s in suffixes], batch_size):
        batch = collate([suffixes[i] for i in index], rec.pad_id, with_answers=False)
        states[index] = answer_states(suffix_states(rec, kv, batch), batch.prompt_lengths).float().cpu()
    rec.train(was_training)
    return states


@dataclass
class CatalogueRanking:
    ranks: pd.DataFrame  # schemas.RANKS rows: both tasks of every evaluated user
    users: int
    prompt_tokens: int
    seconds: float  # prompts + catalogue scores + ranks


def rank_catalogue(rec: RecModel, head: NextItemHead, encoder: TaskEncoder, users: RankingUsers,
                   interactions: pd.DataFrame, batch_size: int, dtype: str) -> CatalogueRanking:
    """Ranks of the evaluated users' targets (pipeline/ranking/catalogue.py; tasks topn and next)
    under the head's catalogue scores, each user's prompt showing the history (and CF state) of
    their first test row."""
    started = time.perf_counter()
    rows = interactions.set_index("row").loc[users.first_rows]
    prompts = [encoder.next(row, r.user, r.item, r.history_items, r.history_labels)
               for row, r in zip(users.first_rows, rows.itertuples(index=False))]
    states = prompt_states(rec, prompts, batch_size, dtype)

    @torch.no_grad()
    def score_users(indices: np.ndarray) -> np.ndarray:  # (len(indices), n_items)
        return head.logits(rec, states[torch.from_numpy(indices)].to(rec.device)).cpu().numpy()

    ranks = catalogue_ranks(users, score_users, TASKS)
    return CatalogueRanking(ranks, int(users.users.size), int(sum(len(p.prompt_ids) for p in prompts)),
                            time.perf_counter() - started)
