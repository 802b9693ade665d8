"""The `openai` backend: any OpenAI-compatible server (`vllm serve`, OpenAI, others).

Many requests are in flight at once (a thread pool of `concurrency` workers; the client is
thread-safe). Each request is retried with exponential backoff and full jitter on 429, 5xx,
timeouts, connection errors, malformed or empty answers and (with a validator) answers that fail
their schema; an answer still invalid after the last retry is returned (the caller sees
`parsed=None`). Other 4xx errors fail at once. When a request fails for good the requests not yet
started are cancelled, those in flight finish (and reach `on_answer`, hence the cache), then an
LLMError names the cause. The API key comes only from the environment variable named in params.
"""
from __future__ import annotations

import os
import random
import time
from concurrent.futures import CancelledError, ThreadPoolExecutor, as_completed
from typing import Sequence

import openai

from pipeline.llm.chat import (
    ChatRequest,
    ChatResponse,
    LLMError,
    OnAnswer,
    StructuredOutputError,
    Validate,
    split_reasoning,
)
from pipeline.llm.config import OpenAIConfig

RETRYABLE_STATUS = {408, 409, 425, 429} | set(range(500, 600))


class EmptyAnswerError(ValueError):
    """The server answered 200 with no choices or no text: worth asking again."""


class OpenAIBackend:
    def __init__(self, model: str, config: OpenAIConfig = OpenAIConfig()):
        self.model_name = model
        self.config = config
        self._key = _api_key(config.api_key_env)
        # Our own retry loop (below) replaces the client's, so every cause is counted and named.
        self.client = openai.OpenAI(
            base_url=config.base_url, api_key=self._key or "EMPTY",
            timeout=config.timeout, max_retries=0,
        )

    def complete(
        self,
        requests: Sequence[ChatRequest],
        on_answer: OnAnswer | None = None,
        validate: Validate | None = None,
    ) -> list[ChatResponse]:
        answers: list[ChatResponse | None] = [None] * len(requests)
        if not requests:
            return []
        failure: LLMError | None = None
        workers = min(self.config.concurrency, len(requests))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openai") as pool:
            futures = {pool.submit(self.ask, r, validate): i for i, r in enumerate(requests)}
            for future in as_completed(futures):
                try:
                    answer = future.result()
                except CancelledError:
                    continue
                except LLMError as err:
                    if failure is None:
                        failure = err
                        for pending in futures:
                            pending.cancel()
                    continue
                answers[futures[future]] = answer
                if on_answer is not None:
                    on_answer(futures[future], answer)
        if failure is not None:
            raise failure
        return answers

    def ask(self, request: ChatRequest, validate: Validate | None = None) -> ChatResponse:
        """One request with retries; raises LLMError naming the last cause."""
        attempts = self.config.max_retries + 1
        cause: Exception | None = None
        invalid: ChatResponse | None = None  # the last answer that failed its schema
        for attempt in range(attempts):
            if attempt:
                time.sleep(self._backoff(attempt))
            try:
                response = self._ask_once(request)
                if validate is not None and request.response_schema is not None:
                    invalid = response
                    validate(response)
                return response
            except openai.APIStatusError as err:
                if err.status_code not in RETRYABLE_STATUS:
                    raise self._error(request, f"HTTP {err.status_code} (not retried)", err) from err
                cause = err
            except (openai.APIConnectionError, openai.APIResponseValidationError, ValueError) as err:
                # Connection errors and timeouts; malformed JSON; empty or schema-invalid answers.
                cause = err
        if isinstance(cause, StructuredOutputError) and invalid is not None:
            return invalid  # answered, but never valid: cached and returned with parsed=None
        raise self._error(request, f"gave up after {attempts} attempts", cause) from cause

    def _ask_once(self, request: ChatRequest) -> ChatResponse:
        sampling = request.sampling
        kwargs: dict = {
            "model": self.model_name,
            "messages": [message.model_dump() for message in request.messages],
            "max_completion_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
        }
        if sampling.temperature > 0:
            kwargs["seed"] = sampling.seed
        if sampling.repetition_penalty != 1.0 and self.config.vllm_extensions:
            kwargs["extra_body"] = {"repetition_penalty": sampling.repetition_penalty}
        if request.response_schema is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": request.response_schema},
            }
        completion = self.client.chat.completions.create(**kwargs)
        if not getattr(completion, "choices", None):
            raise EmptyAnswerError("answer has no choices")
        message = completion.choices[0].message
        text = message.content or ""
        # vLLM's reasoning parsers fill `reasoning_content` (older) or `reasoning` (newer).
        reasoning = getattr(message, "reasoning_content", None) or getattr(message, "reasoning", None)
        if reasoning is None:
            text, reasoning = split_reasoning(text)
        if not text.strip() and not (reasoning or "").strip():
            raise EmptyAnswerError("answer is empty")
        usage = completion.usage
        return ChatResponse(
            text=text.strip(), reasoning=reasoning,
            tokens_in=usage.prompt_tokens if usage else 0,
            tokens_out=usage.completion_tokens if usage else 0,
        )

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))] seconds."""
        ceiling = min(self.config.max_backoff_seconds, self.config.backoff_seconds * 2 ** (attempt - 1))
        return random.uniform(0.0, ceiling)

    def _error(self, request: ChatRequest, what: str, cause: Exception | None) -> LLMError:
        reason = f"{type(cause).__name__}: {cause}" if cause is not None else "unknown"
        if self._key:
            reason = reason.replace(self._key, "***")
        key = request.cache_key(self.model_name)[:12]
        return LLMError(
            f"openai backend ({self.config.base_url}, model {self.model_name!r}): request {key} {what};"
            f" last error: {reason}"
        )


def _api_key(env_var: str | None) -> str | None:
    if env_var is None:
        return None
    key = os.environ.get(env_var)
    if not key:
        raise LLMError(
            f"llm.openai.api_key_env: environment variable {env_var} is not set (export it, or set"
            " api_key_env: null for a server without a key)"
        )
    return key
