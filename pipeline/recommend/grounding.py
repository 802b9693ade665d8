"""Reasons a person can trust: a generated reason that contradicts the history it cites is withheld,
and every recommendation carries evidence computed from data (CF similarity, shared genres).

The contradiction check is deliberately small. It catches a history title (case and punctuation
ignored; the full title, the title cut to rec.prompt.title_words words as the prompt shows it, and
"Nutty Professor, The" also as "The Nutty Professor") that sits in the same sentence within
NEAR words of a like word ("likes", "enjoyed", "loved", "favorite", "they like", ...) or a dislike
word ("disliked", "hated", "avoids", or a negated like: "did not like", "never enjoyed"), the nearest
such word deciding, where the history marks the item the other way. A "not" right before the title
("liked Bravo but not Alpha") flips the claim. It does not catch paraphrased or misspelled titles,
pronouns ("it", "that film"), claims farther than NEAR words or in another sentence, bare "like"
as a preposition ("films like Alpha", deliberately ignored), sarcasm, or two history items whose
titles read the same but carry different labels (never judged)."""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.recommend.ranking import Recommendation

NEAR = 5  # a like/dislike word counts for a title at most this many words away (4 words between)
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)*|[.!?;\n]")  # words (with "didn't") and sentence ends
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)*")
LIKES = {"likes", "liked", "liking", "love", "loves", "loved", "loving", "enjoy", "enjoys", "enjoyed",
         "enjoying", "favorite", "favourite", "favorites", "favourites", "fan", "adore", "adores", "adored",
         "appreciate", "appreciates", "appreciated"}
DISLIKES = {"dislike", "dislikes", "disliked", "hate", "hates", "hated", "avoid", "avoids", "avoided",
            "unliked"}
NEGATORS = {"not", "never", "no", "don't", "doesn't", "didn't", "isn't", "wasn't", "won't", "wouldn't", "hardly"}
# bare "like" is a verb only after these ("they like X", "would like X", "did not like X"); otherwise
# it is taken for the preposition ("films like X")
LIKE_AFTER = {"they", "user", "users", "he", "she", "i", "we", "you", "also", "really", "do", "does", "did",
              "would", "might", "will", "may", "to", "truly"} | NEGATORS
ARTICLES = ("the", "a", "an")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def title_forms(title: str, title_words: int | None) -> set[tuple[str, ...]]:
    """The word sequences a reason may cite `title` by: in full, cut to `title_words` words (the
    prompt's form), and with a trailing ", The" moved to the front."""
    full = _words(title)
    forms = {tuple(full)}
    if title_words is not None:
        forms.add(tuple(_words(" ".join(str(title).split()[:title_words]))))
    for form in list(forms):
        if len(form) > 1 and form[-1] in ARTICLES:
            forms.add((form[-1], *form[:-1]))
    return {f for f in forms if f}


def contradictions(reason: str, history: list[tuple[str, bool]], title_words: int | None = None) -> list[str]:
    """What `reason` says about the `history` (title, liked) that the history contradicts, as
    "calls <title> liked" / "calls <title> not liked" (each title once, in reason order); [] when
    nothing (see the module docstring for what is and is not caught)."""
    labels: dict[tuple[str, ...], set[bool]] = {}
    names: dict[tuple[str, ...], str] = {}
    for title, liked in history:
        for form in title_forms(title, title_words):
            labels.setdefault(form, set()).add(bool(liked))
            names.setdefault(form, title)
    forms = sorted((f for f, seen in labels.items() if len(seen) == 1), key=len, reverse=True)
    tokens = _TOKEN.findall(reason.lower())
    words = [t for t in tokens if _WORD.fullmatch(t)]
    sentence = _sentence_of_words(tokens)
    matches, covered = [], set()
    for start in range(len(words)):  # longest title first at each position; titles do not overlap
        if start in covered:
            continue
        for form in forms:
            end = start + len(form)
            if tuple(words[start:end]) == form and not covered & set(range(start, end)):
                matches.append((start, end, form))
                covered |= set(range(start, end))
                break
    # a sentence end inside a title ("Faster Pussycat! Kill! Kill!") does not end the sentence
    for start, end, _ in matches:
        shift = sentence[end - 1] - sentence[start]
        if shift:
            for i in range(start + 1, len(words)):
                sentence[i] = sentence[start] if i < end else sentence[i] - shift
    found = []
    for start, end, form in matches:
        claim = _claim(words, sentence, covered, start, end)
        liked = next(iter(labels[form]))
        if claim is not None and claim != liked:
            text = f"calls {names[form]} {'liked' if claim else 'not liked'}"
            if text not in found:
                found.append(text)
    return found


def _sentence_of_words(tokens: list[str]) -> list[int]:
    """Sentence index of each word token (sentence ends: . ! ? ; and line breaks)."""
    index, out = 0, []
    for token in tokens:
        if _WORD.fullmatch(token):
            out.append(index)
        else:
            index += 1
    return out


def _claim(words: list[str], sentence: list[int], covered: set[int], start: int, end: int) -> bool | None:
    """True (liked) / False (not liked) / None: the nearest like or dislike word to the title at
    words[start:end], in its sentence, at most NEAR words away, ties to the word before."""
    candidates = []
    for i, word in enumerate(words):
        if i in covered or sentence[i] != sentence[start]:
            continue
        gap = start - i if i < start else i - (end - 1)
        if gap > NEAR:
            continue
        before = words[i - 1] if i > 0 and sentence[i - 1] == sentence[i] else ""
        negated = any(words[j] in NEGATORS and j not in covered and sentence[j] == sentence[i]
                      for j in range(max(0, i - 2), i))
        if word in LIKES or (word == "like" and before in LIKE_AFTER):
            candidates.append((gap, i > start, not negated))
        elif word in DISLIKES and not negated:
            candidates.append((gap, i > start, False))
    if not candidates:
        return None
    claim = min(candidates)[2]
    if start > 0 and words[start - 1] == "not" and sentence[start - 1] == sentence[start]:
        claim = not claim  # "liked Bravo but not Alpha"
    return claim


@dataclass(frozen=True)
class Evidence:
    """Why an item is recommended, from data: the liked history items nearest to it by CF cosine
    (title, cosine; most similar first) and the genres it shares with the liked history."""
    similar_liked: list[tuple[int, str, float]]  # (item id, title, cosine)
    shared_genres: list[str]


def evidence(item: int, history: tuple[list[int], list[int]], item_vectors: np.ndarray, items: pd.DataFrame,
             top: int = 2) -> Evidence:
    """Evidence for recommending `item` to a user with `history` (items, labels: 1 = liked), from
    the CF item vectors (n_items, d) and `items` (ITEMS frame indexed by item: title, categories).
    Only liked history items count; an item with a zero vector has cosine 0 with everything."""
    liked = list(dict.fromkeys(i for i, v in zip(*history) if v))
    if not liked:
        return Evidence([], [])
    target = item_vectors[item].astype(np.float64)  # (d,)
    others = item_vectors[liked].astype(np.float64)  # (n_liked, d)
    norms = np.linalg.norm(others, axis=1) * np.linalg.norm(target)
    cosines = np.divide(others @ target, norms, out=np.zeros(len(liked)), where=norms > 0)
    order = np.lexsort((np.arange(len(liked)), -cosines))[:top]  # ties: the history's order
    similar = [(liked[j], str(items.at[liked[j], "title"]), float(cosines[j])) for j in order]
    liked_genres = {g for i in liked for g in _categories(items, i)}
    shared = [g for g in _categories(items, item) if g in liked_genres]
    return Evidence(similar, list(dict.fromkeys(shared)))


def _categories(items: pd.DataFrame, item: int) -> list[str]:
    value = items.at[item, "categories"]
    return [] if value is None else [str(g) for g in value]


def ground(result: Recommendation, items: pd.DataFrame, item_vectors: np.ndarray,
           title_words: int | None) -> list[tuple[str, Evidence]]:
    """Per recommendation of `result`, in rank order: why its reason is withheld ("it contradicts
    the history: calls X liked"; "" when it is not, or says nothing, which is reported as such) and
    its evidence from data (CF cosine to the liked items of the history shown, shared genres).
    `items`: ITEMS frame indexed by item; `item_vectors` (n_items, d): the CF item table."""
    history = [(str(items.at[i, "title"]), bool(v)) for i, v in zip(*result.history)]
    out = []
    for r in result.ranked.itertuples(index=False):
        found = contradictions(r.reasoning, history, title_words) if r.reasoning and not r.says_nothing else []
        withheld = f"it contradicts the history: {'; '.join(found)}" if found else ""
        out.append((withheld, evidence(int(r.item), result.history, item_vectors, items)))
    return out
