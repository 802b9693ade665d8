"""The text an item is summarized from: its fields, each cut to a word budget.

Ingest already maps every dataset onto the same item fields (title, categories, description,
extra = brand / address / release year), so one builder serves MovieLens, Amazon and Yelp; a field
that is empty for a dataset (MovieLens has no description) is simply left out.
"""
from __future__ import annotations

from pydantic import Field

from pipeline.params import Strict


class WordBudgets(Strict):
    """Maximum words kept from each item field (the paper cuts each to ~100 words)."""


    title: int = Field(ge=1)
    categories: int = Field(ge=1)
    description: int = Field(ge=0)
    extra: int = Field(ge=0)


def cut_words(text: str | None, budget: int) -> str:
    """The first `budget` whitespace-separated words of `text`, whitespace collapsed."""
    if not text or budget <= 0:
        return ""
    return " ".join(str(text).split()[:budget])


def item_text(title, categories, description, extra, budgets: WordBudgets) -> str:
    """One line per non-empty field, e.g. 'Title: Toy Story (1995)\\nCategories: Animation, Comedy'."""
    category_text = ", ".join(str(c) for c in (categories if categories is not None else []))
    fields = [
        ("Title", cut_words(title, budgets.title)),
        ("Categories", cut_words(category_text, budgets.categories)),
        ("Description", cut_words(description, budgets.description)),
        ("Details", cut_words(extra, budgets.extra)),
    ]
    return "\n".join(f"{name}: {value}" for name, value in fields if value)
