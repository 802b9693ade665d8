"""The `openai` backend: any OpenAI-compatible server (`vllm serve`, OpenAI, others).

Many requests are in flight at once (a thread pool of `concurrency` workers; the client is
thread-safe). Each request is retried on 429, 5xx, timeouts, connection errors, malformed or empty
answers and (with a validator) answers that fail their schema; an answer still invalid after the
last retry is returned (the caller sees `parsed=None`). Other 4xx errors fail at once. As in the
openai client, a server's `x-should-retry: true|false` overrides the status, and a `Retry-After`
(or `retry-after-ms`) header sets the delay, capped at `max_backoff_seconds`; otherwise the delay is
exponential backoff with full jitter. Every retry is logged (INFO) and counted by cause
(`retry_counts()`, which CachedChat.stats() reports as `retries`). When a request fails for good
the requests not yet started are cancelled, those in flight finish (and reach `on_answer`, hence
the cache), then an LLMError names the cause.

The API key comes only from the environment variable named in params. It is masked wherever a
server could echo it (error bodies, answers) before any message, log line or answer is made, and
LLMErrors do not chain the client's exception, whose text would print the raw key in a traceback.
"""
from __future__ import annotations

import email.utils
import logging
import math
import os
import random
import threading
import time
from collections import Counter
from concurrent.futures import CancelledError, ThreadPoolExecutor, as_completed
from datetime import timezone
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
log = logging.getLogger("pipeline.llm.openai")


class EmptyAnswerError(ValueError):
    """The server answered 200 with no choices or no text: worth asking again."""


class OpenAIBackend:
    def __init__(self, model: str, config: OpenAIConfig):
        self.model_name = model
        self.config = config
        self._key = _api_key(config.api_key_env)
        self._retries: Counter[str] = Counter()  # cause -> retries made
        self._retries_lock = threading.Lock()
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
        before = self.retry_counts()
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
        retried = Counter(self.retry_counts()) - Counter(before)
        if retried:
            log.warning("openai: %d retries for %d requests (%s)", sum(retried.values()), len(requests),
                        ", ".join(f"{cause}: {n}" for cause, n in sorted(retried.items())))
        if failure is not None:
            raise failure
        return answers

    def retry_counts(self) -> dict[str, int]:
        """Retries made since this backend was built, by cause (http_429, timeout, empty...)."""
        with self._retries_lock:
            return dict(self._retries)

    def ask(self, request: ChatRequest, validate: Validate | None = None) -> ChatResponse:
        """One request with retries; raises LLMError naming the last cause."""
        attempts = self.config.max_retries + 1
        cause: Exception | None = None
        invalid: ChatResponse | None = None  # the last answer that failed its schema
        for attempt in range(1, attempts + 1):
            try:
                response = self._ask_once(request)
                if validate is not None and request.response_schema is not None:
                    invalid = response
                    validate(response)
                return response
            except openai.APIStatusError as err:
                if not _should_retry(err):
                    raise self._error(request, f"HTTP {err.status_code} (not retried)", err) from None
                cause = err
            except (openai.APIConnectionError, openai.APIResponseValidationError, ValueError) as err:
                # Connection errors and timeouts; malformed JSON; empty or schema-invalid answers.
                cause = err
            if attempt < attempts:
                self._wait_before_retry(request, attempt, attempts, cause)
        if isinstance(cause, StructuredOutputError) and invalid is not None:
            return invalid  # answered, but never valid: cached and returned with parsed=None
        # `from None`: the client's exception may carry the raw key; its masked text is in the message
        raise self._error(request, f"gave up after {attempts} attempts", cause) from None

    def _wait_before_retry(self, request: ChatRequest, attempt: int, attempts: int, cause: Exception) -> None:
        reason = retry_cause(cause)
        with self._retries_lock:
            self._retries[reason] += 1
        server_delay = _retry_after(cause)
        if server_delay is not None:
            delay, why = min(server_delay, self.config.max_backoff_seconds), f"Retry-After {server_delay:g} s"
        else:
            delay, why = self._backoff(attempt), "backoff"
        log.info(
            "openai: request %s attempt %d/%d failed (%s: %s); retrying in %.2f s (%s)",
            request.cache_key(self.model_name)[:12], attempt, attempts, reason, self._mask(_describe(cause)), delay, why,
        )
        time.sleep(delay)

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
        text = self._mask(message.content or "")
        # vLLM's reasoning parsers fill `reasoning_content` (older) or `reasoning` (newer).
        reasoning = getattr(message, "reasoning_content", None) or getattr(message, "reasoning", None)
        if reasoning is None:
            text, reasoning = split_reasoning(text)
        else:
            reasoning = self._mask(reasoning)
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

    def _mask(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _error(self, request: ChatRequest, what: str, cause: Exception | None) -> LLMError:
        reason = _describe(cause) if cause is not None else "unknown"
        key = request.cache_key(self.model_name)[:12]
        return LLMError(self._mask(
            f"openai backend ({self.config.base_url}, model {self.model_name!r}): request {key} {what};"
            f" last error: {reason}"
        ))


def _describe(err: Exception) -> str:
    return f"{type(err).__name__}: {err}"


def retry_cause(err: Exception) -> str:
    """A short name for why a request is retried (the key of the retry counters)."""
    if isinstance(err, openai.APIStatusError):
        return f"http_{err.status_code}"
    if isinstance(err, openai.APITimeoutError):
        return "timeout"
    if isinstance(err, openai.APIConnectionError):
        return "connection"
    if isinstance(err, StructuredOutputError):
        return "invalid_answer"
    if isinstance(err, EmptyAnswerError):
        return "empty_answer"
    return "malformed_answer"  # unparseable body, or a response the client could not validate


def _should_retry(err: openai.APIStatusError) -> bool:
    """The server's `x-should-retry` when it sends one (as the openai client obeys), else the status."""
    verdict = err.response.headers.get("x-should-retry")
    if verdict in ("true", "false"):
        return verdict == "true"
    return err.status_code in RETRYABLE_STATUS


def _retry_after(err: Exception) -> float | None:
    """Seconds the server asked to wait (`retry-after-ms`, or `Retry-After` in seconds or as an
    HTTP date), or None when it did not say (or said something unreadable)."""
    if not isinstance(err, openai.APIStatusError):
        return None
    headers = err.response.headers
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        try:
            seconds = float(headers.get(name, "")) * scale
        except ValueError:
            continue
        if math.isfinite(seconds):
            return max(seconds, 0.0)
    try:
        moment = email.utils.parsedate_to_datetime(headers.get("retry-after", ""))
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # "-0000": UTC
        moment = moment.replace(tzinfo=timezone.utc)
    return max(moment.timestamp() - time.time(), 0.0)


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
