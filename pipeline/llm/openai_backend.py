"""The `openai` backend: any OpenAI-compatible server (`vllm serve`, OpenAI, others).

Many requests are in flight at once (a thread pool of `concurrency` workers; the client is
thread-safe). Each request is retried on 429, 5xx, timeouts, connection errors, malformed or empty
answers and (with a validator) answers that fail their schema; an answer still invalid after the
last retry is returned (the caller sees `parsed=None`). Other 4xx errors fail at once. As in the
openai client, a server's `x-should-retry: true|false` overrides the status, and a `Retry-After`
(or `retry-after-ms`) header sets the delay, capped at `max_backoff_seconds`; otherwise the delay is
exponential backoff with full jitter. Every retry is logged (INFO) and counted by cause
(`retry_counts()`, which CachedChat.stats() reports as `retries`).

Nothing a server sends can lose an answer already paid for. The body is read by
`openai_answer.read_completion`, which makes every odd shape a retried error; anything else that
goes wrong in a request becomes an LLMError. Each answer reaches `on_answer` (hence the cache) from
the worker that received it, so it is saved even when the batch fails meanwhile. When a request
fails for good, the requests not yet started are cancelled, those in flight finish their attempt
without retrying (and are saved), then the first error is raised.

`llm.openai.timeout` bounds a whole attempt, not only each socket read: httpx enforces it per
connect/read/write, the body is read in chunks against a wall-clock deadline, and the attempt runs
in its own thread that the request waits for at most that long (a server sending one byte a second
would otherwise hold an attempt for as long as it likes).

The API key comes only from the environment variable named in params. It is masked wherever a
server could echo it (error bodies, answers) before any message, log line or answer is made, it is
held as a SecretStr (no repr shows it), and LLMErrors do not chain the client's exception, whose
text would print the raw key in a traceback.
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
from concurrent.futures import Future, ThreadPoolExecutor, as_completed, wait
from datetime import timezone
from typing import Callable, Sequence

import httpx2
import openai
from pydantic import SecretStr

from pipeline.llm.chat import (
    ChatRequest,
    ChatResponse,
    LLMError,
    OnAnswer,
    StructuredOutputError,
    Validate,
    split_reasoning,
)
from pipeline.llm.config import OpenAIConfig, looks_like_variable_name
from pipeline.llm.openai_answer import EmptyAnswerError, read_completion

RETRYABLE_STATUS = {408, 409, 425, 429} | set(range(500, 600))
log = logging.getLogger("pipeline.llm.openai")


class AttemptTimeout(Exception):
    """An attempt ran past llm.openai.timeout (wall clock): worth asking again."""


class OpenAIBackend:
    def __init__(self, model: str, config: OpenAIConfig):
        self.model_name = model
        self.config = config
        self._key = _api_key(config.api_key_env)
        self._counts_lock = threading.Lock()
        self._retries: Counter[str] = Counter()  # cause -> retries made
        self._without_usage = 0  # answers whose server reported no token counts
        # Our own retry loop (below) replaces the client's, so every cause is counted and named.
        self.client = openai.OpenAI(
            base_url=config.base_url, api_key=self._key.get_secret_value() if self._key else "EMPTY",
            timeout=config.timeout, max_retries=0,
        )

    def complete(
        self,
        requests: Sequence[ChatRequest],
        on_answer: OnAnswer | None = None,
        validate: Validate | None = None,
    ) -> list[ChatResponse]:
        if not requests:
            return []
        answers: list[ChatResponse | None] = [None] * len(requests)
        stop = threading.Event()  # set on the first failure: no new request, no new retry
        before = self.retry_counts(), self._without_usage

        def answer(index: int, request: ChatRequest) -> None:
            answers[index] = self.ask(request, validate, stop)
            if on_answer is not None:  # here, not in the caller's loop: saved even if the batch fails
                on_answer(index, answers[index])

        pool = ThreadPoolExecutor(max_workers=min(self.config.concurrency, len(requests)), thread_name_prefix="openai")
        try:
            failure = _first_failure([pool.submit(answer, i, r) for i, r in enumerate(requests)], stop)
        finally:
            stop.set()  # also on Ctrl-C: nothing new starts, what is in flight finishes and is saved
            pool.shutdown(wait=True, cancel_futures=True)
        self._log_batch(len(requests), *before)
        if failure is not None:
            raise failure
        return answers

    def _log_batch(self, requests: int, retries_before: dict[str, int], without_usage_before: int) -> None:
        retried = Counter(self.retry_counts()) - Counter(retries_before)
        if retried:
            log.warning("openai: %d retries for %d requests (%s)", sum(retried.values()), requests,
                        ", ".join(f"{cause}: {n}" for cause, n in sorted(retried.items())))
        if self._without_usage > without_usage_before:
            log.warning("openai: %d answers came without usage counts; their tokens count as 0 in the metrics",
                        self._without_usage - without_usage_before)

    def retry_counts(self) -> dict[str, int]:
        """Retries made since this backend was built, by cause (http_429, timeout, empty...)."""
        with self._counts_lock:
            return dict(self._retries)

    def ask(
        self, request: ChatRequest, validate: Validate | None = None, stop: threading.Event | None = None,
    ) -> ChatResponse:
        """One request with retries; raises LLMError naming the last cause, and nothing else."""
        attempts = self.config.max_retries + 1
        cause: Exception | None = None
        invalid: ChatResponse | None = None  # the last answer that failed its schema
        for attempt in range(1, attempts + 1):
            try:
                response = _within(self.config.timeout, lambda: self._ask_once(request))
                if validate is not None and request.response_schema is not None:
                    invalid = response
                    validate(response)
                return response
            except openai.APIStatusError as err:
                if not _should_retry(err):
                    raise self._error(request, f"HTTP {err.status_code} (not retried)", err) from None
                cause = err
            except (openai.APIConnectionError, httpx2.RequestError, AttemptTimeout, ValueError) as err:
                # Timeouts and connection errors (also while reading the body); malformed, empty or
                # schema-invalid answers.
                cause = err
            except Exception as err:  # a fault nobody foresaw: fail this request, never escape raw
                raise self._error(request, "failed (not retried)", err) from None
            if attempt == attempts or not self._wait_before_retry(request, attempt, attempts, cause, stop):
                break
        if isinstance(cause, StructuredOutputError) and invalid is not None:
            return invalid  # answered, but never valid: cached and returned with parsed=None
        what = (f"gave up after {attempts} attempts" if attempt == attempts
                else f"stopped after {attempt} attempts: another request of the batch failed")
        # `from None`: the client's exception may carry the raw key; its masked text is in the message
        raise self._error(request, what, cause) from None

    def _wait_before_retry(
        self, request: ChatRequest, attempt: int, attempts: int, cause: Exception, stop: threading.Event | None,
    ) -> bool:
        """Log, count and sleep before the next attempt; False when the batch stopped meanwhile."""
        if stop is not None and stop.is_set():
            return False
        reason = retry_cause(cause)
        with self._counts_lock:
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
        if stop is None:
            time.sleep(delay)
            return True
        return not stop.wait(delay)

    def _ask_once(self, request: ChatRequest) -> ChatResponse:
        deadline = time.monotonic() + self.config.timeout
        # The streaming variant hands us the body unread, so we read it against the deadline and
        # parse it ourselves (read_completion) instead of trusting the client's lenient models.
        with self.client.chat.completions.with_streaming_response.create(**self._body(request)) as response:
            body = _read_before(response, deadline, self.config.timeout)
        completion = read_completion(body)
        text = self._mask(completion.text)
        reasoning = completion.reasoning
        if reasoning is None:
            text, reasoning = split_reasoning(text)
        else:
            reasoning = self._mask(reasoning)
        if completion.tokens_in is None or completion.tokens_out is None:
            with self._counts_lock:
                self._without_usage += 1
        return ChatResponse(
            text=text.strip(), reasoning=reasoning,
            tokens_in=completion.tokens_in or 0, tokens_out=completion.tokens_out or 0,
        )

    def _body(self, request: ChatRequest) -> dict:
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
        return kwargs

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))] seconds."""
        ceiling = min(self.config.max_backoff_seconds, self.config.backoff_seconds * 2 ** (attempt - 1))
        return random.uniform(0.0, ceiling)

    def _mask(self, text: str) -> str:
        return text.replace(self._key.get_secret_value(), "***") if self._key else text

    def _error(self, request: ChatRequest, what: str, cause: Exception | None) -> LLMError:
        reason = _describe(cause) if cause is not None else "unknown"
        key = request.cache_key(self.model_name)[:12]
        return LLMError(self._mask(
            f"openai backend ({self.config.base_url}, model {self.model_name!r}): request {key} {what};"
            f" last error: {reason}"
        ))


def _first_failure(futures: list[Future], stop: threading.Event) -> BaseException | None:
    """Wait for the batch; on the first failed request cancel those not yet started and return its
    error (the caller's shutdown waits for those in flight, which save their own answers)."""
    for future in as_completed(futures):
        if future.cancelled() or future.exception() is None:
            continue
        stop.set()
        for pending in futures:
            pending.cancel()
        return future.exception()
    return None


def _within(seconds: float, attempt: Callable[[], ChatResponse]) -> ChatResponse:
    """Run `attempt` in its own thread and wait at most `seconds` for it: the one bound that holds
    while the server dribbles its headers (httpx times each read, not the whole). A thread left
    behind ends at its next chunk of body (`_read_before`) or at httpx's read timeout."""
    outcome: Future = Future()

    def run() -> None:
        try:
            outcome.set_result(attempt())
        except BaseException as err:  # handed to the waiting request, which sorts it out
            outcome.set_exception(err)

    threading.Thread(target=run, name="openai-attempt", daemon=True).start()
    if not wait([outcome], timeout=seconds).done:
        raise AttemptTimeout(f"no complete answer within llm.openai.timeout = {seconds:g} s")
    return outcome.result()


def _read_before(response, deadline: float, seconds: float) -> bytes:
    """The whole body, or AttemptTimeout as soon as a chunk arrives after the deadline."""
    chunks = []
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise AttemptTimeout(f"body still arriving after llm.openai.timeout = {seconds:g} s")
    return b"".join(chunks)


def _describe(err: Exception) -> str:
    return f"{type(err).__name__}: {err}"


def retry_cause(err: Exception) -> str:
    """A short name for why a request is retried (the key of the retry counters)."""
    if isinstance(err, openai.APIStatusError):
        return f"http_{err.status_code}"
    if isinstance(err, (openai.APITimeoutError, httpx2.TimeoutException, AttemptTimeout)):
        return "timeout"
    if isinstance(err, (openai.APIConnectionError, httpx2.RequestError)):
        return "connection"
    if isinstance(err, StructuredOutputError):
        return "invalid_answer"
    if isinstance(err, EmptyAnswerError):
        return "empty_answer"
    return "malformed_answer"  # MalformedAnswerError: a body that is not a chat completion


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


def _api_key(env_var: str | None) -> SecretStr | None:
    if env_var is None:
        return None
    key = os.environ.get(env_var)
    if key:
        return SecretStr(key)
    if looks_like_variable_name(env_var):
        raise LLMError(
            f"llm.openai.api_key_env: environment variable {env_var} is not set (export it, or set"
            " api_key_env: null for a server without a key)"
        )
    # Not a variable's name: most likely the key itself, which must not reach a terminal or a log.
    raise LLMError(
        f"llm.openai.api_key_env must be the NAME of the environment variable that holds the key (e.g."
        f" OPENAI_API_KEY), not the key; its value ({len(env_var)} characters, not shown) names no set"
        " variable. Put the key in the environment and its variable's name in params"
    )
