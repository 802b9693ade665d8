"""The rule for a reason that says nothing (params explain.says_nothing), on real generated text:
the issue's `--user 196` reason and a looping one are flagged with their counts, reasons that are
sentences pass."""
from __future__ import annotations

import pytest

from params_base import section
from pipeline.explain.says_nothing import SaysNothingRule, count_saying_nothing, says_nothing

RULE = SaysNothingRule(**section("explain.says_nothing"))
LOOP = ("Yes. The user will like this item. User1: [comedy, fantasy, action movie, comedy, action, action, comedy, "
        "action, comedy, action, action, comedy, action, action, comedy, action, action, action, comedy, action, "
        "action, action, action")  # docs/usage.md, rank 1 of user 196
SENTENCES = ["Yes. The user will like this item. The user will like this item if they have a favorite movie or a "
             "comedy movie.",
             "No. The user avoids horror.",
             "Yes. The user enjoys comedy films, and Home Alone is one.",
             "**Yes**. The user’s “favorite” genre is comedy: 5/5 for Home Alone (1990) & Heat [action]."]


@pytest.mark.parametrize("text, why", [
    ("Yes No No No No No No No No", "2 distinct words"),  # the default-run reason
    ("No. No, NO no", "1 distinct word"),  # case and punctuation add no word
    ("", "0 distinct words"),
    (LOOP, "12 distinct of 32 words"),
    # 6 distinct of 7 words: not prose by its symbols
    ("Yescounters No||=||None%||1:|| Yes|• Noortunately: yes", "12 symbols in 50 characters"),
])
def test_reasons_that_say_nothing_are_named_with_their_counts(text, why):
    assert says_nothing(text, RULE) == why


@pytest.mark.parametrize("text", SENTENCES)
def test_sentences_pass(text):
    assert says_nothing(text, RULE) == ""


def test_thresholds_are_the_rules_edges():
    assert (RULE.min_distinct_words, RULE.min_distinct_ratio) == (4, 0.4)  # what the cases above were chosen for
    four = "Yes the user likes"
    assert says_nothing(four, RULE) == "" and says_nothing(four, RULE.model_copy(update={"min_distinct_words": 5}))
    assert says_nothing(LOOP, RULE.model_copy(update={"min_distinct_ratio": 0.37})) == ""  # 12 / 32 = 0.375
    assert count_saying_nothing([LOOP, *SENTENCES, "Yes No No"], RULE) == 2
