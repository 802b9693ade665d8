"""Prompt templates (versioned) and their encoding into token ids with CF placeholder slots.

A prompt is rendered as text with the marker SLOT where a collaborative vector goes (the user's,
each history item's, the target's). Encoding tokenizes the text between markers separately and puts
one placeholder token per marker, recording its position, so the slot positions are exact whatever
the tokenizer does; soft_tokens.py later overwrites those positions' input embeddings.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

SLOT = "<cf>"  # marker in rendered prompt text; never reaches the tokenizer


@dataclass(frozen=True)
class PromptTemplate:
    """One template version. `{…}` fields are filled by render_prompt."""

    system: str
    header: str  # first line of the user turn; {user_slot}
    history_line: str  # {title} {keywords} {slot} {verdict}
    target_line: str  # {title} {keywords} {slot}
    no_history: str  # used when the user has no earlier interactions


TEMPLATES: dict[str, PromptTemplate] = {
    "v1": PromptTemplate(
        system="You are a recommender. Answer Yes or No.",
        header="User{user_slot}. Items rated before, oldest first:",
        history_line="- {title}{keywords}{slot}: {verdict}",
        target_line="Target: {title}{keywords}{slot}. Will the user like the target?",
        no_history="(none)",
    ),
}
VERDICTS = {1: "liked", 0: "not liked"}
ANSWERS = {1: "Yes", 0: "No"}


@dataclass(frozen=True)
class PromptItem:
    """An item as the prompt shows it."""

    title: str
    keywords: tuple[str, ...] = ()


def get_template(version: str) -> PromptTemplate:
    if version not in TEMPLATES:
        raise KeyError(f"rec.prompt.version: unknown template '{version}' (known: {sorted(TEMPLATES)})")
    return TEMPLATES[version]


def render_prompt(
    template: PromptTemplate,
    history: Sequence[tuple[PromptItem, int]],
    target: PromptItem,
    with_slots: bool,
) -> tuple[str, str]:
    """(system, user) texts for one (user, target) pair; `history` = last N (item, label), oldest
    first. With slots the user text carries SLOT for the user, each history item, then the target,
    in that order (the order cf_slot_refs returns)."""
    slot = f" {SLOT}" if with_slots else ""
    lines = [template.header.format(user_slot=slot)]
    for item, label in history:
        lines.append(
            template.history_line.format(
                title=_clean(item.title), keywords=_keywords(item), slot=slot, verdict=VERDICTS[int(label)]
            )
        )
    if not history:
        lines.append(template.no_history)
    lines.append(template.target_line.format(title=_clean(target.title), keywords=_keywords(target), slot=slot))
    return template.system, "\n".join(lines)


def cf_slot_refs(user: int, history_items: Sequence[int], item: int) -> list[tuple[str, int]]:
    """The (kind, id) of each slot in rendered order: user, history items, target item."""
    return [("user", int(user))] + [("item", int(i)) for i in history_items] + [("item", int(item))]


def chat_text(tokenizer, system: str, user: str) -> str:
    """The full prompt text up to where the answer starts (chat template when the model has one)."""
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return f"{system}\n{user}\nAnswer: "


def encode_prompt(tokenizer, text: str, placeholder_id: int) -> tuple[list[int], list[int]]:
    """Token ids of `text` with one `placeholder_id` per SLOT marker, and those markers' positions."""
    ids: list[int] = []
    positions: list[int] = []
    pieces = text.split(SLOT)
    for index, piece in enumerate(pieces):
        if piece:
            ids.extend(tokenizer.encode(piece, add_special_tokens=False))
        if index < len(pieces) - 1:
            positions.append(len(ids))
            ids.append(placeholder_id)
    return ids, positions


def answer_token_ids(tokenizer) -> tuple[int, int]:
    """Ids of the first token of "Yes" and of "No" (the answer position's score reads "Yes")."""
    yes = tokenizer.encode(ANSWERS[1], add_special_tokens=False)
    no = tokenizer.encode(ANSWERS[0], add_special_tokens=False)
    if not yes or not no or yes[0] == no[0]:
        raise ValueError(f"tokenizer cannot tell 'Yes' {yes} from 'No' {no} by their first token")
    return yes[0], no[0]


def _keywords(item: PromptItem) -> str:
    return f" [{', '.join(_clean(k) for k in item.keywords)}]" if item.keywords else ""


def _clean(text: str) -> str:
    return " ".join(str(text).replace(SLOT, "").split())
