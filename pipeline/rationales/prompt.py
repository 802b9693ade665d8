"""The rationale teacher's input (a review, or item metadata + rating when there are no reviews)
and reading its two-sentence answer.

Three answer formats (`rationales.answer_format`): "json_schema" sends RationaleAnswer's JSON
schema (servers that honour response_format / vLLM constrain decoding to it); "prefill" starts the
assistant's turn with "User preference:" so the model only continues the labelled lines (the local
backend; a 135M model otherwise drops the labels); "plain" only asks for the two lines. Every answer
is read as JSON first, then line by line ("User preference: ..." / "Item attributes: ..."), then as
its first two complete sentences; failing all three, the fallback text is used."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from pipeline.keywords.item_text import cut_words
from pipeline.llm.chat import ChatRequest, SamplingParams, chat

AnswerFormat = Literal["json_schema", "prefill", "plain"]
PREFILL = "User preference:"


class RationaleAnswer(BaseModel):
    """The structured answer: one short sentence each."""

    model_config = ConfigDict(extra="forbid")
    user_preference: str = Field(min_length=3, max_length=400)
    item_attributes: str = Field(min_length=3, max_length=400)

SYSTEM = "You explain in very short sentences why people buy, watch or visit things."
REVIEW_INPUT = 'A user bought an item and said: "{review}"'
METADATA_INPUT = "A user rated this item {rating:g} out of 5, so the user {verdict} it.\n{item}"
ASK = (
    "{input}\n\nIn two very short sentences, say what the user prefers and what the item's "
    "attributes are. Reply in exactly this format:\n"
    "User preference: <one sentence>\nItem attributes: <one sentence>"
)

_PREFERENCE = re.compile(r"^\W*(?:\d+[.)]\s*)?\**user'?s? preferences?\**\s*[:\-]\s*(.+)$", re.IGNORECASE)
_ATTRIBUTES = re.compile(r"^\W*(?:\d+[.)]\s*)?\**item'?s? attributes?\**\s*[:\-]\s*(.+)$", re.IGNORECASE)


def review_input(review: str, max_words: int) -> str:
    return REVIEW_INPUT.format(review=cut_words(review, max_words))


def metadata_input(item_description: str, rating: float, liked: bool) -> str:
    """For datasets without reviews (MovieLens): the item's metadata and the user's rating."""
    verdict = "liked" if liked else "did not like"
    return METADATA_INPUT.format(rating=rating, verdict=verdict, item=item_description)


# One worked example per input kind fixes the answer format (a 135M model ignores it otherwise);
# an example of the other kind would leak its domain (kettles) into film rationales.
EXAMPLES = {
    "review": (
        'A user bought an item and said: "Heats up fast and the handle stays cool. Love it."',
        "User preference: The user wants a kettle that is quick and safe to hold.\n"
        "Item attributes: The kettle heats fast and has a cool-touch handle.",
    ),
    "metadata": (
        "A user rated this item 5 out of 5, so the user liked it.\n"
        "Title: Harbor Lights\nCategories: Drama, Romance\nDetails: 1952",
        "User preference: The user enjoys quiet, romantic dramas.\n"
        "Item attributes: An old drama about a love story in a harbor town.",
    ),
}


ASK_JSON = (
    "{input}\n\nIn two very short sentences, say what the user prefers and what the item's "
    'attributes are. Reply with JSON only: {{"user_preference": "...", "item_attributes": "..."}}'
)


def rationale_request(
    input_text: str, kind: str, sampling: SamplingParams, answer_format: AnswerFormat = "plain"
) -> ChatRequest:
    """The request for one row; `kind` ("review" | "metadata") picks the worked example,
    `answer_format` how the answer is asked for (module docstring)."""
    example_input, example_answer = EXAMPLES[kind]
    if answer_format == "json_schema":
        preference, attributes = (line.split(": ", 1)[1] for line in example_answer.splitlines())
        example = RationaleAnswer(user_preference=preference, item_attributes=attributes).model_dump_json()
        return chat(
            ("system", SYSTEM),
            ("user", ASK_JSON.format(input=example_input)),
            ("assistant", example),
            ("user", ASK_JSON.format(input=input_text)),
            sampling=sampling, schema=RationaleAnswer,
        )
    turns = [
        ("system", SYSTEM),
        ("user", ASK.format(input=example_input)),
        ("assistant", example_answer),
        ("user", ASK.format(input=input_text)),
    ]
    if answer_format == "prefill":
        turns.append(("assistant", PREFILL))
    return chat(*turns, sampling=sampling)


def answer_text(text: str, answer_format: AnswerFormat) -> str:
    """The whole answer: a prefilled answer's text continues the prefill (unless it repeats it)."""
    if answer_format != "prefill" or text.lstrip().lower().startswith(PREFILL.lower()):
        return text
    return f"{PREFILL}{text if text[:1].isspace() else ' ' + text}"


@dataclass(frozen=True)
class Rationale:
    user_preference: str
    item_attributes: str
    parsed: bool  # False = the answer could not be parsed and the fallback text is used for both
    form: str = "fallback"  # how it was read: json | lines | sentences | fallback


_SENTENCE = re.compile(r"[^.!?]*\w[^.!?]*[.!?]")
_LABEL = re.compile(r"(?:\d+[.)]\s*)?\**(?:user'?s? preferences?|item'?s? attributes?)\**\s*[:\-]", re.IGNORECASE)


def parse_rationale(answer: str, fallback: str, structured: RationaleAnswer | None = None) -> Rationale:
    """`structured` (a validated JSON answer) when given, else the first 'User preference: ...' and
    'Item attributes: ...' lines of `answer`, else its first two complete sentences; when none of
    these is there, `fallback` (the review, or the metadata input) for both."""
    if structured is not None:
        return Rationale(" ".join(structured.user_preference.split()),
                         " ".join(structured.item_attributes.split()), True, "json")
    preference = attributes = None
    for line in (answer or "").splitlines():
        line = line.strip()
        if preference is None and (m := _PREFERENCE.match(line)):
            preference = m.group(1).strip(" *")
        elif attributes is None and (m := _ATTRIBUTES.match(line)):
            attributes = m.group(1).strip(" *")
    if preference and attributes:
        return Rationale(preference, attributes, True, "lines")
    # no complete pair of labelled lines: the first two sentences of the text without its labels
    unlabelled = _LABEL.sub(" ", answer or "")
    sentences = [" ".join(m.group(0).split()) for m in _SENTENCE.finditer(unlabelled)]
    if len(sentences) >= 2:
        return Rationale(sentences[0], sentences[1], True, "sentences")
    text = " ".join(fallback.split())
    return Rationale(text, text, False)
