"""Prompt templates (versioned) and their encoding into token ids with CF placeholder slots.

A prompt is rendered as text with the marker SLOT where a collaborative vector goes (the user's,
each history item's, the target's). Encoding tokenizes the text between markers separately and puts
one placeholder token per marker, recording its position, so the slot positions are exact whatever
the tokenizer does; soft_tokens.py later overwrites those positions' input embeddings.

Two BREAK markers cut a prompt into three parts that are always tokenized separately: the shared
system part (identical for every row), the user's history, and the target. So the tokens of
"system + history" are the same whatever the target is, and scoring can run that prefix once and
reuse its KV cache for every target (prefix.py) with exactly the tokens a full pass sees.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Sequence

from pipeline.llm.chat import encode_marked, mark_data
from pipeline.rec.params import CF_SLOTS

SLOT = "<cf>"  # marker in rendered prompt text; never reaches the tokenizer
BREAK = "<brk>"  # tokenization boundary in rendered prompt text; never reaches the tokenizer


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
    # v2: the question comes before the target, so the part after the last break (what each
    # top-N candidate costs on top of the shared prefix) is only the target and the chat tail
    "v2": PromptTemplate(
        system="You are a recommender. Answer Yes or No.",
        header="User{user_slot}. Items rated before, oldest first:",
        history_line="- {title}{keywords}{slot}: {verdict}",
        target_line="Will the user like this item? {title}{keywords}{slot}",
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
    marked: bool = False,
    slots: Collection[str] = CF_SLOTS,
) -> tuple[str, str]:
    """(system, user) texts for one (user, target) pair; `history` = last N (item, label), oldest
    first. With slots the user text carries SLOT for the user, each history item, then the target,
    in that order (the order cf_slot_refs returns), each kind only if it is in `slots`
    (rec.prompt.cf_slots: CoLLM's own prompt has user and target only). The one rendering of a row:
    the teacher's question, the student's prompt and the gold explanations all show this text.
    `marked` puts BREAK before the history and before the target (for encode_prompt)."""
    system, head, target_text = render_parts(template, history, target, with_slots, slots)
    if marked:
        return system, f"{BREAK}{head}\n{BREAK}{target_text}"
    return system, f"{head}\n{target_text}"


def render_parts(
    template: PromptTemplate,
    history: Sequence[tuple[PromptItem, int]],
    target: PromptItem,
    with_slots: bool,
    slots: Collection[str] = CF_SLOTS,
) -> tuple[str, str, str]:
    """(system, header + history lines, target line) of one (user, target) pair."""
    # no space before a slot: a stray space token per slot
    slot = {kind: SLOT if with_slots and kind in slots else "" for kind in CF_SLOTS}
    lines = [template.header.format(user_slot=slot["user"])]
    for item, label in history:
        lines.append(
            template.history_line.format(
                title=_clean(item.title), keywords=_keywords(item), slot=slot["history"], verdict=VERDICTS[int(label)]
            )
        )
    if not history:
        lines.append(template.no_history)
    target_text = template.target_line.format(title=_clean(target.title), keywords=_keywords(target),
                                              slot=slot["target"])
    return template.system, "\n".join(lines), target_text


def cf_slot_refs(user: int, history_items: Sequence[int], item: int,
                 slots: Collection[str] = CF_SLOTS) -> list[tuple[str, int]]:
    """The (kind, id) of each slot in rendered order: user, history items, target item (the
    kinds in `slots`)."""
    return ([("user", int(user))] if "user" in slots else []) \
        + ([("item", int(i)) for i in history_items] if "history" in slots else []) \
        + ([("item", int(item))] if "target" in slots else [])


def chat_text(tokenizer, system: str, user: str) -> str:
    """The full prompt text up to where the answer starts (chat template when the model has one).
    Titles and keywords are data: a special-token string in them is marked (mark_data) so that
    encode_prompt tokenizes it as text, not as the chat template's own token."""
    system, user = mark_data(tokenizer, system), mark_data(tokenizer, user)
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return f"{system}\n{user}\nAnswer: "


@dataclass(frozen=True)
class EncodedPrompt:
    ids: list[int]
    slot_positions: list[int]  # index of each SLOT's placeholder token
    breaks: list[int]  # token index at each BREAK marker (where a separately tokenized part starts)


def encode_prompt(tokenizer, text: str, placeholder_id: int) -> EncodedPrompt:
    """Token ids of `text` (chat_text's) with one `placeholder_id` per SLOT marker; the text
    between markers (SLOT or BREAK) is tokenized piece by piece, so no token spans a marker, and
    the data's marked special-token strings as text."""
    ids: list[int] = []
    positions: list[int] = []
    breaks: list[int] = []
    for part_index, part in enumerate(text.split(BREAK)):
        if part_index:
            breaks.append(len(ids))
        pieces = part.split(SLOT)
        for index, piece in enumerate(pieces):
            if piece:
                ids.extend(encode_marked(tokenizer, piece))
            if index < len(pieces) - 1:
                positions.append(len(ids))
                ids.append(placeholder_id)
    return EncodedPrompt(ids, positions, breaks)


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
    return " ".join(str(text).replace(SLOT, "").replace(BREAK, "").split())
