"""Full-catalogue ranking of the evaluated users (pipeline/ranking/catalogue.py) by an LLM
recommender: it re-ranks the retriever's top K through the same path as `thinkrec recommend`
(pipeline/ranking/order.py). CF models and popularity score the whole catalogue
(pipeline/ranking/ranks.py)."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from pipeline.ranking.catalogue import RankingUsers, evaluated_users
from pipeline.ranking.order import Query, rerank_queries
from pipeline.ranking.params import RankingParams
from pipeline.ranking.ranks import list_ranks
from pipeline.rec.examples import CFVectors


def user_states(vectors: CFVectors, users: RankingUsers) -> np.ndarray:
    """(U, d) the retriever's state of each evaluated user before their first test row: a
    sequential model's per-row state, else the user vector."""
    return np.stack([vectors.user_state(int(user), int(row)) for user, row in zip(users.users, users.first_rows)])


def evaluation_queries(users: RankingUsers, interactions: pd.DataFrame, retriever: CFVectors,
                       history_items: int) -> list[Query]:
    """One Query per user with a liked test item: the history of their first test row (the last
    `history_items`), the retriever's state before it, the items they had not seen."""
    ranked = set(users.task_users("topn").tolist())
    rows = interactions.set_index("row").loc[users.first_rows, ["history_items", "history_labels"]]
    states = user_states(retriever, users)
    queries = []
    for index, user in enumerate(users.users):
        if int(user) not in ranked:
            continue
        items, labels = rows.iloc[index]
        items, labels = [int(i) for i in items], [int(v) for v in labels]
        history = (items[-history_items:], labels[-history_items:]) if history_items > 0 else ([], [])
        queries.append(Query(int(user), history, states[index], users.candidates(index)))
    return queries


def rerank_evaluation(recommender, interactions: pd.DataFrame, retriever: CFVectors, params: RankingParams,
                      batch_size: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(RERANKED scores of every retrieved candidate, RANKS of the "topn" targets, timings) of a
    trained recommender re-ranking the retriever's top `params.retrieve_k` for every evaluated user."""
    users = evaluated_users(interactions, len(retriever.items), params)
    queries = evaluation_queries(users, interactions, retriever, recommender.prompt.history_items)
    clock = time.perf_counter()
    lists, _ = rerank_queries(recommender, queries, retriever.items, params.retrieve_k, batch_size,
                              desc="full-catalogue re-rank")
    seconds = time.perf_counter() - clock
    scored = pd.concat([frame.assign(user=query.user) for query, frame in zip(queries, lists)]
                       or [pd.DataFrame(columns=["user", "item", "cf_rank", "cf_score", "score"])], ignore_index=True)
    reranked = pd.DataFrame({
        "user": scored["user"].to_numpy(np.int32), "item": scored["item"].to_numpy(np.int32),
        "retriever_rank": scored["cf_rank"].to_numpy(np.int32),
        "retriever_score": scored["cf_score"].to_numpy(np.float32), "score": scored["score"].to_numpy(np.float32),
    }).sort_values(["user", "retriever_rank"], ignore_index=True)
    ranks = list_ranks(users, {query.user: frame["item"].to_numpy() for query, frame in zip(queries, lists)}, ("topn",))
    timings = {"rerank_seconds": seconds, "rerank_users": len(queries), "rerank_candidates": int(len(reranked)),
               "rerank_candidates_per_second": len(reranked) / max(seconds, 1e-9)}
    return reranked, ranks, timings
