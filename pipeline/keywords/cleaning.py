"""Turning an LLM's keyword answer into a clean list of at most N keywords.

The answer is split on commas (and newlines / semicolons, which small models emit instead); each
piece loses list markers, quotes and lead-ins such as "Keywords:". Cleaning is per keyword: a piece
made only of stopwords, numbers, filler ("here are the keywords") or words under 3 characters is
dropped; stopwords are trimmed from its ends but kept inside ("lord of the rings" stays whole);
sentence-long pieces are dropped; duplicates (case-insensitive) are dropped; the first N survive.
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

# Words of the chatter around keywords (lead-ins, refusals): a piece made only of these (and
# stopwords) is no keyword; inside a keyword they stay ("title fight", "self help").
FILLER = frozenset(
    """keyword keywords summary summarize summarized sure certainly okay here following item items
    list answer note comma commas separated output text title description category categories
    details sorry cannot unable assist help provide information""".split()
)

MAX_CONTENT_WORDS = 4  # a piece with more non-stopwords is a sentence, not a keyword
MAX_WORDS = 6  # ... and so is a longer piece, stopwords included
_SPLIT = re.compile(r"[,;\n]+")
_WORD = re.compile(r"[^\W_]+(?:[-'\u2019][^\W_]+)*")  # "sci-fi", "children's" (also with ’)
_NUMBER = re.compile(r"^\d+(?:st|nd|rd|th|s)?$")
_LIST_MARKER = re.compile(r"^\s*(?:\d+[.)]|[-*\u2022])\s+")  # "1. ", "2) ", "- ", "* ", bullets


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
    words = _words(_LIST_MARKER.sub("", piece))
    while words and words[0] in STOPWORDS:
        words.pop(0)
    while words and words[-1] in STOPWORDS:
        words.pop()
    if all(is_noise(w) for w in words):  # also true for no words at all
        return ""
    if len(words) > MAX_WORDS or len(content_words(words)) > MAX_CONTENT_WORDS:
        return ""
    return " ".join(words)


def is_noise(word: str) -> bool:
    """A word that is no keyword on its own: stopword, number, filler, or under 3 characters."""
    return word in STOPWORDS or word in FILLER or len(word) < 3 or bool(_NUMBER.match(word))


def content_words(words) -> tuple[str, ...]:
    """`words` without stopwords and numbers: what a keyword says ("lord of the rings" -> lord, rings)."""
    return tuple(w for w in words if w not in STOPWORDS and not _NUMBER.match(w))


def keyword_content(text: str) -> tuple[str, ...]:
    """content_words of any text, lowercased (titles such as "Lord of the Rings, The (1978)" too)."""
    return content_words(_words(text or ""))


def _words(text: str) -> list[str]:
    return [w.lower().replace("\u2019", "'") for w in _WORD.findall(text)]


def fallback_keywords(categories, max_keywords: int = 10) -> list[str]:
    """Keywords from the item's categories/genres when the LLM answer is unusable."""
    return clean_keywords(", ".join(str(c) for c in (categories if categories is not None else [])), max_keywords)
