"""One user's recommendations: CF proposes unseen items, the LLM recommender re-ranks them, the
top few get the model's reasoning."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.recommend.candidates import latest_history, unseen_by_cf
from pipeline.recommend.rerank import Recommender, candidate_frame, reasons, rerank


@dataclass(frozen=True)
class GenerationSettings:
    batch_size: int  # prompts per generate() call
    max_new_tokens: int
    min_new_tokens: int  # EOS blocked this long: most training answers are a bare Yes/No


@dataclass
class Recommendation:
    user: int
    history: tuple[list[int], list[int]]  # the prompt's history: items, labels (1 = liked), oldest first
    ranked: pd.DataFrame  # item, score (LLM answer logit), cf_score, cf_rank, reasoning ("" past the explained)


def recommend_items(
    recommender: Recommender, interactions: pd.DataFrame, user: int, raw_id: str,
    cf_users: np.ndarray, cf_items: np.ndarray, candidates: int, k: int, explain: int,
    batch_size: int, dtype: str, generation: GenerationSettings,
) -> Recommendation:
    """Top `k` of `candidates` CF-proposed unseen items by the LLM's answer score (ties: CF order),
    reasoning for the first `explain`. `cf_users` (n_users, d), `cf_items` (n_items, d): CF tables."""
    history = latest_history(interactions, user, raw_id, recommender.prompt.history_items)
    proposed = unseen_by_cf(interactions, user, cf_users[user], cf_items, candidates)
    scores, examples = rerank(recommender, candidate_frame(user, proposed["item"].to_numpy(), history), batch_size, dtype)
    proposed["score"] = scores
    order = np.lexsort((proposed["cf_rank"].to_numpy(), -scores))[:k]
    ranked = proposed.iloc[order].reset_index(drop=True)
    texts = reasons(recommender, [examples[i] for i in order[:explain]], generation.batch_size,
                    generation.max_new_tokens, generation.min_new_tokens, dtype)
    ranked["reasoning"] = texts + [""] * (len(ranked) - len(texts))
    return Recommendation(user, history, ranked[["item", "score", "cf_score", "cf_rank", "reasoning"]])
