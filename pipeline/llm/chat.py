"""The request/response types every LLM backend speaks, and the backend protocol.

A backend answers a batch of ChatRequests with ChatResponses in the same order. Callers never
talk to a backend directly: they go through `pipeline.llm.cache.CachedChat`, which answers
repeated requests from a persistent cache and counts calls, hits, tokens and wall time.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Literal, Protocol, Sequence

from pydantic import BaseModel, ConfigDict, Field


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


class ChatBackend(Protocol):
    """What every backend implements. `model_name` identifies the model in cache keys."""

    model_name: str

    def complete(self, requests: Sequence[ChatRequest]) -> list[ChatResponse]:
        """Answer every request, in order. Raises LLMError when a request cannot be answered."""
        ...


class LLMError(RuntimeError):
    """A request failed for good (after retries), with the reason and the request's cache key."""
