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
"""
from __future__ import annotations

import hashlib
import json
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
