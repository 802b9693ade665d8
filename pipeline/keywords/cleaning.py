"""Turning an LLM's keyword answer into a clean list of at most N keywords.

The answer is split on commas (and newlines / semicolons, which small models emit instead); each
piece loses list markers, quotes and lead-ins such as "Keywords:"; inside a piece, stopwords,
numbers and words under 3 characters are dropped; pieces that are filler ("here are the keywords")
or sentence-long are dropped; duplicates (case-insensitive) are dropped; the first N survive.
"""
from __future__ import annotations

import re

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves also etc""".split()
)

# Words that only occur in chatter (lead-ins, refusals) around keywords, never in a useful keyword.
FILLER = frozenset(
    """keyword keywords summary summarize summarized sure certainly okay here following item items
    list answer note comma commas separated output text title description category categories
    details sorry cannot unable assist help provide information""".split()
)

MAX_WORDS_PER_KEYWORD = 4  # longer pieces are sentences, not keywords
_SPLIT = re.compile(r"[,;\n]+")
_WORD = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*")
_NUMBER = re.compile(r"^\d+(?:st|nd|rd|th|s)?$")


def clean_keywords(answer: str, max_keywords: int = 10) -> list[str]:
    """Cleaned keywords from `answer` in their original order (lowercased), at most `max_keywords`."""
    keywords: list[str] = []
    seen: set[str] = set()
    for piece in _SPLIT.split(answer or ""):
        keyword = clean_piece(piece)
        if keyword and keyword not in seen:
            seen.add(keyword)
            keywords.append(keyword)
        if len(keywords) == max_keywords:
            break
    return keywords


def clean_piece(piece: str) -> str:
    """One comma-separated piece -> a keyword, or "" when nothing useful is left."""
    if ":" in piece:  # "Keywords: comedy" -> "comedy"
        piece = piece.rsplit(":", 1)[1]
    words = [w.lower() for w in _WORD.findall(piece)]
    if any(w in FILLER for w in words):
        return ""
    kept = [w for w in words if len(w) >= 3 and w not in STOPWORDS and not _NUMBER.match(w)]
    if not kept or len(kept) > MAX_WORDS_PER_KEYWORD:
        return ""
    return " ".join(kept)


def fallback_keywords(categories, max_keywords: int = 10) -> list[str]:
    """Keywords from the item's categories/genres when the LLM answer is unusable."""
    return clean_keywords(", ".join(str(c) for c in (categories if categories is not None else [])), max_keywords)
