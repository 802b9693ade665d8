"""One user's recommendations: CF proposes unseen items, the LLM recommender re-ranks them, the
top few get the model's reasoning."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from pipeline.errors import BadInput
from pipeline.explain.says_nothing import SaysNothingRule, says_nothing
from pipeline.rec.generate import RepetitionControls
from pipeline.rec.recommender import Recommender
from pipeline.ranking.order import Query, rerank_queries
from pipeline.recommend.candidates import latest_history, unseen_items
from pipeline.recommend.cf_state import HistoryEncoder


@dataclass(frozen=True)
class GenerationSettings:
    batch_size: int  # prompts per generate() call
    max_new_tokens: int
    min_new_tokens: int  # EOS blocked this long: most training answers are a bare Yes/No
    controls: RepetitionControls  # no_repeat_ngram_size, repetition_penalty
    says_nothing: SaysNothingRule  # a reason it flags is reported as saying nothing


@dataclass
class Recommendation:
    user: int
    history: tuple[list[int], list[int]]  # the prompt's history: items, labels (1 = liked), oldest first
    # item, score (LLM answer logit), cf_score, cf_rank, reasoning ("" past the explained),
    # says_nothing (why the reasoning says nothing, e.g. "2 distinct words"; "" when it says something)
    ranked: pd.DataFrame


def recommend_items(
    recommender: Recommender, interactions: pd.DataFrame, user: int, raw_id: str,
    cf_users: np.ndarray, cf_items: np.ndarray, candidates: int, k: int, explain: int,
    batch_size: int, dtype: str, generation: GenerationSettings, encode_history: HistoryEncoder | None = None,
) -> Recommendation:
    """Top `k` of `candidates` CF-proposed unseen items by the LLM's answer score (ties: CF order),
    reasoning for the first `explain`. `cf_users` (n_users, d), `cf_items` (n_items, d): CF tables;
    with `encode_history` (a sequential CF model) the user's vector is its state after the latest
    history instead, for the candidates and for the prompt's CF slot alike. Each reason is judged
    by `generation.says_nothing`."""
    items, labels = latest_history(interactions, user, raw_id)
    keep = recommender.prompt.history_items
    history = (items[-keep:], labels[-keep:]) if keep > 0 else ([], [])
    cf_user = encode_history(user, items, labels) if encode_history is not None else cf_users[user]
    query = Query(user, history, cf_user, unseen_items(interactions, user, len(cf_items)))
    [proposed], [examples] = rerank_queries(recommender, [query], cf_items, candidates, batch_size, dtype)
    require_finite(proposed, recommender)
    ranked = proposed.iloc[:k].reset_index(drop=True)
    texts = recommender.reasons(examples[:min(explain, len(ranked))], generation.batch_size,
                                generation.max_new_tokens, generation.min_new_tokens, dtype, generation.controls)
    unexplained = [""] * (len(ranked) - len(texts))
    ranked["reasoning"] = texts + unexplained
    ranked["says_nothing"] = [says_nothing(t, generation.says_nothing) for t in texts] + unexplained
    return Recommendation(user, history, ranked[["item", "score", "cf_score", "cf_rank", "reasoning", "says_nothing"]])


def require_finite(proposed: pd.DataFrame, recommender: Recommender) -> None:
    """A NaN or infinite score cannot be ranked, nor written as JSON: BadInput naming the first such
    candidate and where the value comes from, before any reason is generated."""
    sources = {"cf_score": "the CF vectors (user or item) hold non-finite values",
               "score": f"the trained model '{recommender.spec.name}' or the CF vectors its prompts show "
                        "hold non-finite values"}
    for column, source in sources.items():
        bad = proposed.loc[~np.isfinite(proposed[column].to_numpy(dtype=np.float64))]
        if len(bad):
            raw = recommender.data.items.set_index("item").at[int(bad["item"].iloc[0]), "raw_id"]
            raise BadInput(f"the {column} of {len(bad)} of {len(proposed)} candidates is not finite "
                           f"({bad[column].iloc[0]} for item {raw}): {source}")
