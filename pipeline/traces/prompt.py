"""The teacher's prompt, the hints of the verification loop, and reading the teacher's answer.

The teacher's question embeds the student's own prompt text (pipeline.rec.prompts.render_prompt
without CF slots, over the same catalog of short titles and keywords), so a trace reasons about
exactly the items, titles and keywords the student will see next to it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from pipeline.llm.chat import ChatMessage
from pipeline.rec.prompts import PromptItem, PromptTemplate, render_prompt

LABEL_WORDS = {1: "Yes", 0: "No"}
# Where a counted verdict came from: an "Answer: Yes" line, a leading "Yes." followed by reasoning,
# the one-word reply to VERDICT_QUESTION after an answer that stated none, or nowhere (no explicit
# verdict, or explicit verdicts that disagree, and no readable reply when asked).
ANSWER_LINE, LEADING, ASKED, NO_VERDICT = "answer_line", "leading", "asked", "none"
VERDICT_FORMS = (ANSWER_LINE, LEADING, ASKED, NO_VERDICT)

SYSTEM = (
    "You are a recommender system. Given a user's history of rated items, you decide whether "
    "the user will like a target item, and you answer Yes or No."
)
INSTRUCTION = (
    "In two or three sentences, state the user's preferences shown by these items and whether the "
    "target fits them. End with 'Answer: Yes' or 'Answer: No'."
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
# Asked in the same conversation after an answer that reasons but states no verdict (a small teacher
# often runs out of tokens before its "Answer:" line). Three tokens hold "Yes.", "No," or "**No**".
VERDICT_QUESTION = "So, is your answer Yes or No? Reply with one word."
VERDICT_TOKENS = 3

# "Answer: Yes", "**Answer:** No", 'Answer "Yes"', "answer - yes"; not "Answer: No doubt..." nor
# "answer yes or no" (a lowercase word follows the verdict).
_ANSWER_LINE = re.compile(
    r"[*_#>]*\banswer[*_ \t]*(?:[:\-][*_ \t]*)?[\"'\u201c\u2018]?(yes|no)\b"
    r"(?:[\"'\u201d\u2019]|(?![ \t]+(?-i:[a-z])))[*_]*[ \t]*[.;,!]?",
    re.IGNORECASE,
)
# "Yes. ...", "**No**, ...", "Yes" alone on the first line; not "No comedy appears...".
_LEADING_VERDICT = re.compile(
    r"^[\s*_#>\"']*(yes|no)[*_\"']*[ \t]*(?:[.,:;!\u2013\u2014-]+|\n|$)", re.IGNORECASE
)


def question_messages(
    history_items: Sequence[int],
    history_labels: Sequence[int],
    target: int,
    catalog: Mapping[int, PromptItem],
    template: PromptTemplate,
    n_history: int,
) -> list[ChatMessage]:
    """The first two messages (system, user) for one row: the user turn is the student's prompt
    text over the last `n_history` history items (catalog = build_catalog's items), then the
    instruction to reason and answer."""
    pairs = list(zip(history_items, history_labels))[-n_history:] if n_history > 0 else []
    history = [(catalog[int(item)], int(label)) for item, label in pairs]
    _, student_text = render_prompt(template, history, catalog[int(target)], with_slots=False)
    return [
        ChatMessage(role="system", content=SYSTEM),
        ChatMessage(role="user", content=f"{student_text}\n\n{INSTRUCTION}"),
    ]


def hint_message(label: int, failed_round: int) -> ChatMessage:
    """The hint after the teacher's `failed_round`-th wrong answer (1-based), rotating over HINTS."""
    hint = HINTS[(failed_round - 1) % len(HINTS)]
    return ChatMessage(role="user", content=hint.format(label=LABEL_WORDS[label]))


@dataclass(frozen=True)
class TeacherAnswer:
    verdict: int | None  # 1 = Yes, 0 = No, None = no verdict counts
    reasoning: str  # whitespace collapsed; "" when the teacher gave no reasoning
    form: str  # one of VERDICT_FORMS


def read_answer(text: str, reasoning_field: str | None = None, min_reasoning_words: int = 1) -> TeacherAnswer:
    """Verdict, reasoning and verdict form of one answer.

    A verdict counts only when stated explicitly: an "Answer: Yes/No" line (anywhere; several must
    agree), or a leading "Yes."/"No." that at least `min_reasoning_words` words of reasoning follow.
    A yes or no inside the prose ("there is no comedy here") never counts, and an answer whose
    explicit verdicts disagree has none. A reasoning model served with a reasoning parser returns its
    reasoning separately (`reasoning_field`); its final text is then read the same way, and a
    leading verdict there needs no reasoning after it.
    """
    text = text or ""
    separate = bool(reasoning_field and reasoning_field.strip())
    lines = [m.group(1).lower() for m in _ANSWER_LINE.finditer(text)]
    body = _ANSWER_LINE.sub(" ", text)
    verdicts, form = set(lines), ANSWER_LINE if lines else NO_VERDICT
    if lead := _LEADING_VERDICT.match(body):
        body = body[lead.end():]
        if separate or len(body.split()) >= min_reasoning_words:
            verdicts.add(lead.group(1).lower())
            form = form if lines else LEADING
    reasoning = collapse_whitespace(reasoning_field if separate else body)
    if len(verdicts) != 1:
        return TeacherAnswer(None, reasoning, NO_VERDICT)
    return TeacherAnswer(int(verdicts.pop() == "yes"), reasoning, form)


def read_asked_verdict(text: str, reasoning_field: str | None = None) -> int | None:
    """The verdict of a reply to VERDICT_QUESTION: a leading Yes/No (nothing need follow it) or an
    answer line, read as read_answer reads them; None when the reply states none."""
    return read_answer(text, reasoning_field, min_reasoning_words=0).verdict


def collapse_whitespace(text: str) -> str:
    return " ".join((text or "").split())


def stored_trace(label: int, reasoning: str) -> str:
    """'<Yes|No>. <reasoning>' as the trace is stored and trained on."""
    return f"{LABEL_WORDS[label]}. {collapse_whitespace(reasoning)}"
