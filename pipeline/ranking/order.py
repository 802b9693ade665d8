"""The one ranking path: the retriever (a CF model) proposes a user's top K unseen items and a
trained LLM recommender re-ranks them (stages/fused.py mixes both scores under the same order
rule). `thinkrec recommend` and the evaluation's re-rankers both call `rerank_queries`, so for the
same user state and K the list a user is shown is the list that is measured (the CLI's default K,
`recommend.candidates`, is longer than the evaluation's `ranking.retrieve_k`).

Ties: the retriever breaks ties by item id; the re-ranked order breaks ties by retriever rank.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import pandas as pd

from pipeline.ranking.lists import reranked_order, retrieve
from pipeline.rec.examples import RecExample
from pipeline.rec.recommender import Recommender


@dataclass(frozen=True)
class Query:
    """One user to rank for: the history the prompt shows (items, labels; oldest first, already
    cut to the prompt's length), the user's CF state (the retriever's user vector and the prompt's
    user slot) and the items the user may be offered (ascending ids)."""

    user: int
    history: tuple[list[int], list[int]]
    cf_user: np.ndarray  # (d,)
    candidates: np.ndarray  # item ids the user has not interacted with


def candidate_frame(user: int, items: np.ndarray, history: tuple[list[int], list[int]]) -> pd.DataFrame:
    """Recommender.encode input: each candidate as the target after `history` (row -1: not an
    interaction; state_row -1: the prompt's user slot shows the user's vector in the CF table)."""
    history_items, history_labels = history
    return pd.DataFrame({
        "row": -1, "user": user, "item": np.asarray(items, dtype=np.int64), "label": 0,
        "history_items": [list(history_items)] * len(items), "history_labels": [list(history_labels)] * len(items),
        "state_row": -1,
    })


def rerank_queries(recommender: Recommender, queries: Sequence[Query], cf_items: np.ndarray, k: int,
                   batch_size: int, dtype: str | None = None, desc: str = "re-rank"
                   ) -> tuple[list[pd.DataFrame], list[list[RecExample]]]:
    """Each query's top `k` retrieved items re-ranked by the recommender's answer score: per query a
    frame (item, cf_score, cf_rank, score) in re-ranked order, and the encoded examples in that
    order. Every query's user slot (and, with experts, the gate) sees the query's CF state."""
    if not queries:
        return [], []
    users = [query.user for query in queries]
    if len(set(users)) != len(users):
        raise ValueError("rerank_queries: one query per user")
    vectors = recommender.data.vectors
    if vectors is not None:  # the prompt's user slot shows each query's state (state_row -1 reads `users`)
        table = vectors.users.copy()
        for query in queries:
            table[query.user] = query.cf_user
        recommender.data.vectors = replace(vectors, users=table, row_users=None, rows=None)
    proposed = [retrieve(query.cf_user, cf_items, query.candidates, k) for query in queries]
    frame = pd.concat([candidate_frame(query.user, found["item"].to_numpy(), query.history)
                       for query, found in zip(queries, proposed)], ignore_index=True)
    examples = recommender.encode(frame, desc=f"encode {desc}") if len(frame) else []
    scores = recommender.score_candidates(examples, batch_size, dtype, desc) if examples else np.zeros(0)
    ranked, ordered, start = [], [], 0
    for found in proposed:
        end = start + len(found)
        found = found.assign(score=scores[start:end].astype(np.float32))
        order = reranked_order(found["score"].to_numpy(), found["cf_rank"].to_numpy())
        ranked.append(found.iloc[order].reset_index(drop=True))
        ordered.append([examples[start + i] for i in order])
        start = end
    return ranked, ordered
