"""The rationale teacher's input (a review, or item metadata + rating when there are no reviews)
and reading its two-sentence answer: line by line ("User preference: ..." / "Item attributes: ..."),
else its first two complete sentences (small models drop the labels but keep the two sentences)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.keywords.item_text import cut_words
from pipeline.llm.chat import ChatRequest, SamplingParams, chat

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


def rationale_request(input_text: str, kind: str, sampling: SamplingParams) -> ChatRequest:
    """The request for one row; `kind` ("review" | "metadata") picks the worked example."""
    example_input, example_answer = EXAMPLES[kind]
    return chat(
        ("system", SYSTEM),
        ("user", ASK.format(input=example_input)),
        ("assistant", example_answer),
        ("user", ASK.format(input=input_text)),
        sampling=sampling,
    )


@dataclass(frozen=True)
class Rationale:
    user_preference: str
    item_attributes: str
    parsed: bool  # False = the answer could not be parsed and the fallback text is used for both


_SENTENCE = re.compile(r"[^.!?]*\w[^.!?]*[.!?]")


def parse_rationale(answer: str, fallback: str) -> Rationale:
    """The first 'User preference: ...' and 'Item attributes: ...' lines of `answer`, else its first
    two complete sentences; when neither is there, `fallback` (the review, or the metadata input)
    for both."""
    preference = attributes = None
    for line in (answer or "").splitlines():
        line = line.strip()
        if preference is None and (m := _PREFERENCE.match(line)):
            preference = m.group(1).strip(" *")
        elif attributes is None and (m := _ATTRIBUTES.match(line)):
            attributes = m.group(1).strip(" *")
    if preference and attributes:
        return Rationale(preference, attributes, True)
    if preference is None and attributes is None:
        sentences = [" ".join(m.group(0).split()) for m in _SENTENCE.finditer(answer or "")]
        if len(sentences) >= 2:
            return Rationale(sentences[0], sentences[1], True)
    text = " ".join(fallback.split())
    return Rationale(text, text, False)
