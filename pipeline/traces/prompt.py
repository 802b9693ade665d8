"""The teacher's prompt, the hints of the verification loop, and reading the teacher's answer."""
from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from pipeline.llm.chat import ChatMessage

LABEL_WORDS = {1: "Yes", 0: "No"}

SYSTEM = (
    "You are a recommender system. Given a user's history of rated items, you decide whether "
    "the user will like a target item, and you answer Yes or No."
)
QUESTION = (
    "The user's history, oldest first:\n{history}\n\nTarget item: {target}\n\n"
    "Will the user like the target item? In two or three sentences, state the user's preferences "
    "shown by the history and whether the target item fits them. End with 'Answer: Yes' or 'Answer: No'."
)
# Paraphrased hints, rotated by round; each names the true label and asks for a re-analysis.
HINTS = (
    "That is not right: the correct answer is {label}. Reflect on the user's history again and "
    "re-analyse it to explain why the answer is {label}. End with 'Answer: {label}'.",
    "Your conclusion is wrong; the user's true answer is {label}. Look at the history once more, "
    "find the preferences that lead to {label}, and reason it through. End with 'Answer: {label}'.",
    "Not quite. The right answer is {label}. Re-examine which items the user liked and disliked "
    "and reason step by step towards {label}. End with 'Answer: {label}'.",
)

_ANSWER_LINE = re.compile(r"\**\s*answer\s*\**\s*[:\-]\s*\**\s*(yes|no)\b[^\n]*", re.IGNORECASE)
_LEADING_VERDICT = re.compile(r"^\W*(yes|no)\b[\s.,:!-]*", re.IGNORECASE)
_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def describe_items(items: pd.DataFrame) -> dict[int, str]:
    """item id -> 'Title [category, category]' as the prompts show it."""
    out = {}
    for r in items.itertuples(index=False):
        cats = ", ".join(str(c) for c in (r.categories if r.categories is not None else []))
        out[int(r.item)] = f"{r.title} [{cats}]" if cats else str(r.title)
    return out


def question_messages(history_items, history_labels, target: int, names: dict[int, str], n_history: int):
    """The first two messages (system, user) for one row; history = its last `n_history` items."""
    pairs = list(zip(history_items, history_labels))[-n_history:] if n_history > 0 else []
    lines = [
        f"{i}. {names[int(item)]}: {'liked' if int(label) == 1 else 'not liked'}"
        for i, (item, label) in enumerate(pairs, 1)
    ]
    text = QUESTION.format(history="\n".join(lines) or "(none)", target=names[int(target)])
    return [ChatMessage(role="system", content=SYSTEM), ChatMessage(role="user", content=text)]


def hint_message(label: int, failed_round: int) -> ChatMessage:
    """The hint after the teacher's `failed_round`-th wrong answer (1-based), rotating over HINTS."""
    hint = HINTS[(failed_round - 1) % len(HINTS)]
    return ChatMessage(role="user", content=hint.format(label=LABEL_WORDS[label]))


@dataclass(frozen=True)
class TeacherAnswer:
    verdict: int | None  # 1 = Yes, 0 = No, None = no verdict found
    reasoning: str  # whitespace collapsed; "" when the teacher gave no reasoning


def read_answer(text: str, reasoning_field: str | None = None) -> TeacherAnswer:
    """Verdict and reasoning of one answer.

    A reasoning model served with a reasoning parser returns its reasoning separately and a short
    final answer; other models write both into the text, where the verdict is the last
    'Answer: Yes/No' line, else a leading 'Yes'/'No', else the last standalone yes/no.
    """
    text = text or ""
    matches = list(_ANSWER_LINE.finditer(text))
    if matches:
        verdict_word = matches[-1].group(1)
        body = _ANSWER_LINE.sub(" ", text)
    elif lead := _LEADING_VERDICT.match(text):
        verdict_word, body = lead.group(1), text[lead.end():]
    else:
        words = _YES_NO.findall(text)
        verdict_word, body = (words[-1] if words else None), text
    verdict = None if verdict_word is None else int(verdict_word.lower() == "yes")
    reasoning = reasoning_field if reasoning_field and reasoning_field.strip() else body
    return TeacherAnswer(verdict, collapse_whitespace(reasoning))


def collapse_whitespace(text: str) -> str:
    return " ".join((text or "").split())


def stored_trace(label: int, reasoning: str) -> str:
    """'<Yes|No>. <reasoning>' as the trace is stored and trained on."""
    return f"{LABEL_WORDS[label]}. {collapse_whitespace(reasoning)}"
