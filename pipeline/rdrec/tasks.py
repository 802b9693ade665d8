"""The student's task prompts, encoded as RecExamples (so pipeline/rec batches, trains and scores
them). Prompts are short: a user is their CF token + their last few rated titles; an item is its
title + its CF token.

- rank: "User<cf> rated: A (liked); B (not liked). Will the user like this item?" | " C<cf>" -> Yes/No
- next: the same user part, "Which item will the user pick next?" -> the next item, scored over the
  whole catalogue by the next-item head at the last prompt token (next_item.py): no answer tokens
- preference: the same user part, "What does the user prefer?" -> the teacher's user preference
- attributes: "Item C<cf>. What are its attributes?" -> the teacher's item attributes

The BREAK markers put the system part, the user part and the target in separately tokenized parts,
so one user's top-N candidates share everything up to the target (pipeline/rec/prefix.py).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from pipeline.llm.chat import encode_text
from pipeline.rec.examples import CFVectors, RecExample, slot_kinds
from pipeline.rec.prompts import ANSWERS, BREAK, SLOT, PromptItem, chat_text, encode_prompt

SYSTEM = "You are a recommender."
VERDICTS = {1: "liked", 0: "not liked"}


class TaskEncoder:
    """Encodes task rows for one tokenizer, catalog and CF tables."""

    def __init__(self, tokenizer, catalog: Mapping[int, PromptItem], vectors: CFVectors, history_items: int,
                 max_rationale_tokens: int):
        self.tokenizer, self.catalog, self.vectors = tokenizer, catalog, vectors
        self.history_items, self.max_rationale_tokens = history_items, max_rationale_tokens
        self.placeholder = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []

    def user_part(self, items: Sequence[int], labels: Sequence[int]) -> str:
        """"User<cf> rated: A (liked); B (not liked)." with the last `history_items` of the history."""
        keep = self.history_items
        shown = [f"{self._title(i)} ({VERDICTS[int(v)]})"
                 for i, v in zip(list(items)[-keep:], list(labels)[-keep:])] if keep else []
        return f"User{SLOT} rated: {'; '.join(shown) if shown else 'nothing yet'}."

    def rank(self, row: int, user: int, item: int, label: int, items: Sequence[int], labels: Sequence[int],
             state_row: int | None = None) -> RecExample:
        """(user, candidate) -> Yes/No; the user's CF state before `state_row` (default `row`)."""
        text = f"{BREAK}{self.user_part(items, labels)} Will the user like this item?\n{BREAK}{self._title(item)}{SLOT}"
        refs = [("user", user), ("item", item)]
        answer = self.tokenizer.encode(ANSWERS[int(label)], add_special_tokens=False) + self.eos
        return self._example(row, user, item, label, text, refs, row if state_row is None else state_row,
                             answer, reasoning=False)

    def next(self, row: int, user: int, item: int, items: Sequence[int], labels: Sequence[int],
             state_row: int | None = None) -> RecExample:
        """(user, history) -> `item`, the item of `row`; the user's CF state before `state_row`
        (default `row`). No answer tokens: the head reads the last prompt token's hidden state."""
        text = f"{BREAK}{self.user_part(items, labels)} Which item will the user pick next?"
        return self._example(row, user, item, 1, text, [("user", user)], row if state_row is None else state_row,
                             [], reasoning=False)

    def preference(self, row: int, user: int, item: int, items: Sequence[int], labels: Sequence[int],
                   rationale: str) -> RecExample:
        text = f"{BREAK}{self.user_part(items, labels)} What does the user prefer?"
        return self._rationale(row, user, item, text, [("user", user)], rationale)

    def attributes(self, row: int, user: int, item: int, rationale: str) -> RecExample:
        text = f"{BREAK}Item {self._title(item)}{SLOT}. What are its attributes?"
        return self._rationale(row, user, item, text, [("item", item)], rationale)

    def _rationale(self, row, user, item, text, refs, rationale: str) -> RecExample:
        answer = encode_text(self.tokenizer, " ".join(str(rationale).split()))  # the teacher's text: data
        example = self._example(row, user, item, 0, text, refs, row, answer[: self.max_rationale_tokens] + self.eos,
                                reasoning=True)
        example.answer_cut = len(answer) > self.max_rationale_tokens
        return example

    def _example(self, row, user, item, label, text, refs, state_row, answer, reasoning) -> RecExample:
        prompt = encode_prompt(self.tokenizer, chat_text(self.tokenizer, SYSTEM, text), self.placeholder)
        breaks = prompt.breaks + [len(prompt.ids)] * (2 - len(prompt.breaks))
        return RecExample(
            int(row), int(user), int(item), int(label), prompt.ids, answer, prompt.slot_positions,
            self.vectors.lookup(refs, int(state_row)), slot_kinds(refs), reasoning=reasoning, shared_len=breaks[0],
            target_start=breaks[1],
        )

    def _title(self, item: int) -> str:
        """The item's short title, without marker text (a title holding "<cf>" would add a slot)."""
        if int(item) not in self.catalog:
            raise KeyError(f"item {item} not in items.parquet")
        return " ".join(self.catalog[int(item)].title.replace(SLOT, " ").replace(BREAK, " ").split())


def rank_rows(train: pd.DataFrame, item_ids: np.ndarray, positives: int, negatives: int, seed: int) -> pd.DataFrame:
    """Up to `positives` liked train rows (seeded sample), each followed by `negatives` rows for
    items the user never interacted with in train (label 0; same row, history and user state)."""
    rng = np.random.default_rng(seed)
    liked = train[train["label"] == 1].sort_values("row")
    if len(liked) > positives:
        liked = liked.iloc[np.sort(rng.choice(len(liked), positives, replace=False))]
    seen = train.groupby("user")["item"].agg(set).to_dict()
    records = []
    for row in liked.itertuples(index=False):
        records.append((row.row, row.user, row.item, 1, row.history_items, row.history_labels))
        pool = np.setdiff1d(item_ids, np.fromiter(seen[row.user], dtype=np.int64))
        for item in rng.choice(pool, size=min(negatives, len(pool)), replace=False):
            records.append((row.row, row.user, int(item), 0, row.history_items, row.history_labels))
    return pd.DataFrame(records, columns=["row", "user", "item", "label", "history_items", "history_labels"])
