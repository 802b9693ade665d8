"""Asking the LLM for each item's keywords and cleaning the answers (with a counted fallback)."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from pipeline.keywords.cleaning import clean_keywords, fallback_keywords, keyword_content
from pipeline.keywords.item_text import WordBudgets, item_text
from pipeline.llm.chat import ChatRequest, SamplingParams, chat

# The instruction is said once; worked examples fix the format, and every item then comes as a bare
# user turn (~166 tokens in all, 139 shared: the local backend runs those once per batch). A
# film-like example besides the product one took SmolLM2-135M's unusable (sentence) answers on all
# 1,682 ML-100k items from 32% to 7%, and the mean keywords per item from 2.4 to 4.2.
SYSTEM = (
    "You are a skilled summarizer. For each item, reply with at most ten keywords separated by "
    "commas, and nothing else."
)
EXAMPLES = (
    (
        "Title: The Lighthouse Keeper\nCategories: Drama, Mystery\nDetails: 1989",
        "lighthouse, island, storm, isolation, family secret, sea, slow burn",
    ),
    (
        "Title: Stainless Steel Kettle\nCategories: Kitchen, Appliances\nDetails: cordless, 1.7 litres",
        "kettle, stainless steel, kitchen appliance, boiling water, cordless, tea, fast heating",
    ),
)


def keyword_request(text: str, sampling: SamplingParams) -> ChatRequest:
    shots = [turn for item, answer in EXAMPLES for turn in (("user", item), ("assistant", answer))]
    return chat(("system", SYSTEM), *shots, ("user", text), sampling=sampling)


def echoed_words(title) -> set[tuple[str, ...]]:
    """What keywords that only repeat the prompt say (keyword_content): the item's own title, or the
    worked example's keywords (a small model copies them into unrelated items)."""
    examples = {keyword_content(k) for _, answer in EXAMPLES for k in clean_keywords(answer)}
    return {keyword_content(str(title or ""))} | examples


def keywords_from_answer(response, title, max_tokens: int, max_keywords: int) -> list[str]:
    """Cleaned keywords of one answer, without echoes; a truncated answer (max_tokens reached)
    loses its last, cut-off piece."""
    text = response.text
    if response.tokens_out >= max_tokens and "," in text:
        text = text.rsplit(",", 1)[0]
    echoes = echoed_words(title)
    keywords = [k for k in clean_keywords(text, max_keywords + len(echoes)) if keyword_content(k) not in echoes]
    return keywords[:max_keywords]


@dataclass
class KeywordResult:
    table: pd.DataFrame  # columns of schemas.ITEM_KEYWORDS, one row per item, in item order
    fallbacks: int  # items whose LLM answer was unusable (fewer than min_keywords after cleaning)
    empty: int  # items with no keywords at all (unusable answer and no categories)
    not_asked: int  # items outside the LLM budget (`ask`): categories used, source "fallback"
    requests: int = 0  # teacher requests (cached or not): the stage's cost with an empty cache
    tokens_in: int = 0  # prompt tokens of those requests
    tokens_out: int = 0  # answer tokens of those requests


def most_interacted_items(
    interactions: pd.DataFrame, limit: int | None, items: Iterable[int] = ()
) -> set[int] | None:
    """The `limit` items with the most interactions (ties: lower id first); `items` missing from
    `interactions` count 0, so they still fill a budget larger than the items seen. None = every item."""
    if limit is None:
        return None
    counts = interactions["item"].value_counts()
    counts = counts.reindex(counts.index.union(pd.Index(list(items))), fill_value=0)
    order = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))
    return {int(item) for item, _ in order[:limit]}


def summarize_items(
    items: pd.DataFrame,
    client,
    budgets: WordBudgets,
    sampling: SamplingParams,
    max_keywords: int = 10,
    min_keywords: int = 1,
    ask: set[int] | None = None,
) -> KeywordResult:
    """Keywords for every row of `items` (schemas.ITEMS), asking the LLM about the items in `ask`
    (None = all) and using categories for the rest; `client` is a CachedChat."""
    items = items.sort_values("item").reset_index(drop=True)
    asked = items if ask is None else items[items["item"].isin(ask)]
    texts = [
        item_text(r.title, r.categories, r.description, r.extra, budgets)
        for r in asked.itertuples(index=False)
    ]
    responses = client.complete([keyword_request(t, sampling) for t in texts], desc="keywords")
    answers = dict(zip(asked["item"].tolist(), responses))
    rows, fallbacks, empty = [], 0, 0
    for item in items.itertuples(index=False):
        response = answers.get(int(item.item))
        if response is None:
            keywords = fallback_keywords(item.categories, max_keywords)
            rows.append({"item": int(item.item), "keywords": keywords, "source": "fallback"})
            continue
        keywords = keywords_from_answer(response, item.title, sampling.max_tokens, max_keywords)
        source = "llm"
        if len(keywords) < min_keywords:
            keywords, source = fallback_keywords(item.categories, max_keywords), "fallback"
            fallbacks += 1
            empty += not keywords
        rows.append({"item": int(item.item), "keywords": keywords, "source": source})
    table = pd.DataFrame(rows, columns=["item", "keywords", "source"])
    return KeywordResult(
        table, fallbacks, empty, len(items) - len(asked), len(responses),
        sum(r.tokens_in for r in responses), sum(r.tokens_out for r in responses),
    )
