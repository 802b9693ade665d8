"""A measurable rule for a generated reason that says nothing: too few distinct words ("Yes No No
No No"), so few for its length that it is a loop, or so many symbols that it is not prose
("Yescounters No||=||None%||1:|| Yes|• Noortunately: yes" has 6 distinct of 7 words but 12 symbols in
50 characters). Words are lower-cased runs of word characters (text_metrics.tokenize without its
punctuation marks), so case and punctuation add no word."""
from __future__ import annotations

import re

from pydantic import Field

from pipeline.params import Strict

_WORD = re.compile(r"\w+")
# a symbol: a character that is neither a word character, white space nor the punctuation of prose,
# quotes and markdown emphasis (|, =, %, •, {, <, ... are symbols)
_SYMBOL = re.compile(r"[^\w\s.,;:!?'\"()\[\]\-&/*\u2018\u2019\u201c\u201d]")
MAX_SYMBOL_SHARE = 0.1  # symbols / non-space characters above this is not prose (fixed: no params key)


class SaysNothingRule(Strict):
    """params.yaml's explain.says_nothing."""

    min_distinct_words: int = Field(ge=1)  # fewer distinct words than this says nothing
    min_distinct_ratio: float = Field(ge=0.0, le=1.0)  # distinct / all words below this is a loop


def says_nothing(text: str, rule: SaysNothingRule) -> str:
    """Why `text` says nothing by `rule` ("2 distinct words", "5 distinct of 40 words") or by its
    symbols ("12 symbols in 50 characters", over MAX_SYMBOL_SHARE), or "" when it says something."""
    words = _WORD.findall(text.lower())
    distinct = len(set(words))
    if distinct < rule.min_distinct_words:
        return f"{distinct} distinct word{'' if distinct == 1 else 's'}"
    if distinct < rule.min_distinct_ratio * len(words):
        return f"{distinct} distinct of {len(words)} words"
    characters = len(text) - sum(c.isspace() for c in text)
    symbols = len(_SYMBOL.findall(text))
    if symbols > MAX_SYMBOL_SHARE * characters:
        return f"{symbols} symbols in {characters} characters"
    return ""


def count_saying_nothing(texts: list[str], rule: SaysNothingRule) -> int:
    return sum(bool(says_nothing(text, rule)) for text in texts)
