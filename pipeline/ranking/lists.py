"""The ranking rules, torch-free: what the retriever proposes and how a re-ranked list is ordered
(pipeline/ranking/order.py runs them with a recommender; stages/fused.py orders fused scores by them).

Ties: the retriever breaks ties by item id; a re-ranked order breaks ties by retriever rank.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def retrieve(cf_user: np.ndarray, cf_items: np.ndarray, candidates: np.ndarray, k: int) -> pd.DataFrame:
    """The `k` of `candidates` the CF model scores highest (<user, item>, a logit), best first,
    ties by item id: columns item, cf_score, cf_rank (1 = best)."""
    candidates = np.asarray(candidates, dtype=np.int64)
    scores = cf_items[candidates] @ cf_user
    order = np.lexsort((candidates, -scores))[:k]
    return pd.DataFrame({"item": candidates[order].astype(np.int32), "cf_score": scores[order].astype(np.float32),
                         "cf_rank": np.arange(1, order.size + 1)})


def reranked_order(scores: np.ndarray, cf_rank: np.ndarray) -> np.ndarray:
    """Positions of a retrieved list in re-ranked order: by score, ties by retriever rank."""
    return np.lexsort((np.asarray(cf_rank), -np.asarray(scores, dtype=np.float64)))
