"""Prompt rendering and slot encoding (no model needed: a whitespace tokenizer stands in)."""
from __future__ import annotations

import pytest

from pipeline.rec.prompts import (
    BREAK,
    SLOT,
    PromptItem,
    cf_slot_refs,
    encode_prompt,
    get_template,
    render_prompt,
)


class WordTokenizer:
    """Maps each whitespace-separated word to a stable id (ids >= 10; 0 is the placeholder)."""

    def __init__(self):
        self.vocab: dict[str, int] = {}

    def encode(self, text, add_special_tokens=False):
        return [self.vocab.setdefault(word, 10 + len(self.vocab)) for word in text.split()]


def test_render_puts_one_slot_per_user_history_item_and_target_in_order():
    history = [(PromptItem("Heat", ("crime", "heist")), 1), (PromptItem("Babe <cf>"), 0)]
    system, user = render_prompt(get_template("v1"), history, PromptItem("Fargo", ("crime",)), with_slots=True)
    assert "Answer Yes or No" in system
    lines = user.splitlines()
    assert lines[1] == f"- Heat [crime, heist]{SLOT}: liked"
    assert lines[2] == f"- Babe{SLOT}: not liked"  # a marker inside a title is removed, not a slot
    assert lines[3].startswith(f"Target: Fargo [crime]{SLOT}.")
    assert user.count(SLOT) == 1 + len(history) + 1 == len(cf_slot_refs(7, [3, 4], 5))
    assert cf_slot_refs(7, [3, 4], 5) == [("user", 7), ("item", 3), ("item", 4), ("item", 5)]
    _, text_only = render_prompt(get_template("v1"), history, PromptItem("Fargo"), with_slots=False)
    assert SLOT not in text_only and "- Heat [crime, heist]: liked" in text_only


def test_encode_prompt_records_each_slot_position_and_break():
    tokenizer = WordTokenizer()
    encoded = encode_prompt(tokenizer, f"sys {BREAK}User {SLOT} likes Heat {SLOT} and {BREAK}Fargo {SLOT}", 0)
    ids, positions = encoded.ids, encoded.slot_positions
    assert positions == [2, 5, 8] and encoded.breaks == [1, 7]
    assert [ids[p] for p in positions] == [0, 0, 0]
    assert 0 not in [ids[i] for i in range(len(ids)) if i not in positions]


def test_marked_rendering_is_the_plain_rendering_cut_before_history_and_target():
    history = [(PromptItem("Heat", ("crime",)), 1)]
    system, plain = render_prompt(get_template("v2"), history, PromptItem("Fargo"), with_slots=True)
    _, marked = render_prompt(get_template("v2"), history, PromptItem("Fargo"), with_slots=True, marked=True)
    assert marked.count(BREAK) == 2 and marked.startswith(BREAK)
    assert marked.replace(BREAK, "") == plain
    assert marked.split(BREAK)[2] == f"Will the user like this item? Fargo{SLOT}"  # the target part is last


def test_unknown_template_version_names_the_param():
    with pytest.raises(KeyError, match="rec.prompt.version: unknown template 'v9'"):
        get_template("v9")
