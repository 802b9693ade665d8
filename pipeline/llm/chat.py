"""The request/response types every LLM backend speaks, and the backend protocol.

A backend answers a batch of ChatRequests with ChatResponses in the same order. Callers never
talk to a backend directly: they go through `pipeline.llm.cache.CachedChat`, which answers
repeated requests from a persistent cache and counts calls, hits, tokens and wall time.

Structured output: build the request with `chat(..., schema=MyModel)` (the JSON schema travels in
the request and its cache key) and call `CachedChat.complete(requests, desc, response_model=MyModel)`.
Every answer is validated with `parse_structured` on receipt: the `openai` backend treats an
invalid answer as a failed attempt and asks again (up to `llm.openai.max_retries`); `vllm` and
servers that honour `response_format` constrain decoding to the schema; the `local` backend cannot
constrain decoding, so the prompt itself must ask for the JSON. Each returned response carries
`.parsed`: the validated model instance, or None when the answer stayed invalid (the raw text is in
`.text`; the caller falls back and counts it).

Data stays text: a message's content (an item title, a review, a teacher's answer) is data, so a
special-token string inside it ("<|im_start|>system ...") must not become the special token. The
backends that tokenize themselves call `chat_token_ids`: the contents' special-token strings are
marked before the chat template runs and tokenized as text; the template's own stay special. Text
without such strings gets exactly the ids a plain `tokenizer(rendered text)` gives.
"""
from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from typing import Any, Callable, Literal, Protocol, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pipeline.errors import ProjectError


class ChatMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class SamplingParams(BaseModel):
    model_config = ConfigDict(frozen=True)

    max_tokens: int = Field(64, ge=1)  # new tokens to generate at most
    temperature: float = Field(0.0, ge=0.0)  # 0 = greedy
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    repetition_penalty: float = Field(1.0, gt=0.0)  # 1 = off (local and vllm backends only)
    seed: int = 0  # used when temperature > 0


class ChatRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    messages: tuple[ChatMessage, ...]
    sampling: SamplingParams = SamplingParams()
    # JSON schema of a structured answer (from a pydantic model's model_json_schema()), or None.
    response_schema: dict[str, Any] | None = None

    def cache_key(self, model: str) -> str:
        """A hash of everything that determines the answer: model, messages, sampling, schema.

        Never the API key or the server URL: the same model behind another URL answers the same.
        """
        payload = {
            "model": model,
            "messages": [m.model_dump() for m in self.messages],
            "sampling": self.sampling.model_dump(),
            "schema": self.response_schema,
        }
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()


def chat(*turns: tuple[str, str], sampling: SamplingParams | None = None, schema=None) -> ChatRequest:
    """Build a request from (role, content) pairs; `schema` may be a pydantic model class."""
    if schema is not None and not isinstance(schema, dict):
        schema = schema.model_json_schema()
    return ChatRequest(
        messages=tuple(ChatMessage(role=role, content=content) for role, content in turns),
        sampling=sampling or SamplingParams(),
        response_schema=schema,
    )


class ChatResponse(BaseModel):
    text: str  # the final answer
    reasoning: str | None = None  # a reasoning model's separate reasoning field, when served
    tokens_in: int = 0
    tokens_out: int = 0
    cached: bool = False  # answered from the cache, at no cost
    # The validated pydantic object when CachedChat.complete got a response_model (None = invalid).
    parsed: Any = Field(None, exclude=True)


# Called by a backend as soon as request `index` of the batch is answered (from worker threads too).
OnAnswer = Callable[[int, ChatResponse], None]
# Raises StructuredOutputError when an answer is not acceptable (the backend may then ask again).
Validate = Callable[[ChatResponse], Any]


class ChatBackend(Protocol):
    """What every backend implements. `model_name` identifies the model in cache keys.

    `on_answer` and `validate` are optional keywords: CachedChat passes them when a backend's
    `complete` accepts them (all built-in backends do); a minimal test backend may omit them.
    """

    model_name: str

    def complete(
        self,
        requests: Sequence[ChatRequest],
        on_answer: OnAnswer | None = None,
        validate: Validate | None = None,
    ) -> list[ChatResponse]:
        """Answer every request, in order. Raises LLMError when a request cannot be answered."""
        ...


class LLMError(ProjectError, RuntimeError):
    """A request failed for good (after retries), with the reason and the request's cache key."""


class StructuredOutputError(ValueError):
    """An answer is not valid JSON for the requested schema."""


def parse_structured(response: ChatResponse, model: type[BaseModel]) -> BaseModel:
    """Validate an answer as `model`; tolerates code fences or prose around one JSON object."""
    text = response.text.strip()
    candidates = [text]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    error: Exception | None = None
    for candidate in candidates:
        try:
            return model.model_validate_json(candidate)
        except ValidationError as err:
            error = err
    raise StructuredOutputError(f"answer is not a valid {model.__name__}: {error}; text={text[:200]!r}")


def split_reasoning(text: str) -> tuple[str, str | None]:
    """Split a reasoning model's "<think>...</think> answer" into (answer, reasoning)."""
    head, sep, tail = text.partition("</think>")
    if not sep:
        return text.strip(), None
    return tail.strip(), head.replace("<think>", "", 1).strip()


# Private-use code points around a special-token string found in data; they never reach the
# tokenizer (data holding them loses them first, so it cannot mark text of its own).
MARK_START, MARK_END = "\ue000", "\ue001"
_MARKED = re.compile(f"{MARK_START}([^{MARK_END}]*){MARK_END}")


def mark_data(tokenizer, text: str) -> str:
    """`text` (data) with each of the tokenizer's special-token strings in it marked, for
    `encode_marked` to tokenize as text."""
    text = text.replace(MARK_START, "").replace(MARK_END, "")
    pattern = _special_pattern(_special_tokens(tokenizer))
    return pattern.sub(lambda m: f"{MARK_START}{m.group(0)}{MARK_END}", text) if pattern else text


def encode_marked(tokenizer, text: str) -> list[int]:
    """Token ids of `text` (a rendered chat whose data went through `mark_data`): marked strings
    as plain text, the rest as the tokenizer reads it (the template's special tokens stay special)."""
    pieces = _MARKED.split(text)  # [text, marked, text, marked, ..., text]
    ids: list[int] = []
    for index, piece in enumerate(pieces):
        if piece:
            ids += encode_text(tokenizer, piece) if index % 2 else tokenizer.encode(piece, add_special_tokens=False)
    return ids


def encode_text(tokenizer, text: str) -> list[int]:
    """Token ids of data text (an answer, a trace, a rationale): special-token strings as text."""
    return tokenizer.encode(text, add_special_tokens=False, split_special_tokens=True)


def render_chat(tokenizer, messages: list[dict], marked: bool = False) -> str:
    """The chat template's text, ending where the assistant's turn starts; a final assistant
    message is a prefill: the answer continues it. `marked`: contents through `mark_data`."""
    if marked:
        messages = [{**message, "content": mark_data(tokenizer, message["content"])} for message in messages]
    prefill = messages[-1]["role"] == "assistant"
    return tokenizer.apply_chat_template(
        messages, add_generation_prompt=not prefill, continue_final_message=prefill, tokenize=False
    )


def chat_token_ids(tokenizer, messages: list[dict]) -> list[int]:
    """The prompt's token ids: the template's special tokens special, every content as text."""
    return encode_marked(tokenizer, render_chat(tokenizer, messages, marked=True))


def _special_tokens(tokenizer) -> tuple[str, ...]:
    """Every special token's string (named ones and added ones flagged special), longest first
    so a token wins over the tokens it contains."""
    added = getattr(tokenizer, "added_tokens_decoder", None) or {}
    tokens = {token.content for token in added.values() if getattr(token, "special", False)}
    tokens |= set(getattr(tokenizer, "all_special_tokens", None) or [])
    return tuple(sorted((t for t in tokens if t), key=len, reverse=True))


@lru_cache(maxsize=8)
def _special_pattern(tokens: tuple[str, ...]) -> re.Pattern | None:
    return re.compile("|".join(map(re.escape, tokens))) if tokens else None
