"""The openai backend against a fake OpenAI-compatible server on loopback that injects faults."""
import email.utils
import json
import logging
import sqlite3
import time
import traceback

import pytest
from pydantic import BaseModel

from llm_fake_server import FakeChatServer
from params_base import section
from pipeline.llm.backends import build_backend
from pipeline.llm.cache import CachedChat
from pipeline.llm.chat import LLMError, SamplingParams, chat
from pipeline.llm.config import LLMConfig


class Rationale(BaseModel):
    user_preference: str
    item_attributes: str


def backend_for(server: FakeChatServer, **overrides):
    settings = dict(
        base_url=server.base_url, api_key_env=None, concurrency=4, max_retries=5,
        timeout=0.3, backoff_seconds=0.01, max_backoff_seconds=0.05, vllm_extensions=True,
    )
    settings.update(overrides)
    config = LLMConfig.model_validate(section("llm", backend="openai", model="teacher", openai=settings))
    return build_backend(config)


def ask(*prompts: str):
    return [chat(("system", "You answer briefly."), ("user", p)) for p in prompts]


def fail_one(server: FakeChatServer, cache, prompts, failing: str, fault: str, match: str, **overrides):
    """The CachedChat whose batch of `prompts` failed (LLMError matching `match`) because the server
    answers `failing` with `fault` every time."""
    server.always_fail[failing] = fault
    cached_chat = CachedChat(backend_for(server, **overrides), cache)
    with pytest.raises(LLMError, match=match):
        cached_chat.complete(ask(*prompts), desc="test")
    return cached_chat


def test_every_fault_is_retried_then_answered_and_cached(tmp_path):
    with FakeChatServer(hang_seconds=0.6) as server:
        server.faults["a"] = ["429", "500", "timeout", "malformed", "empty"]
        cached_chat = CachedChat(backend_for(server), tmp_path / "cache.sqlite")
        first = cached_chat.complete(ask("a", "b"), desc="test")
        assert [r.text for r in first] == ["echo: a", "echo: b"]
        assert not any(r.cached for r in first)
        assert server.hits == {"a": 6, "b": 1}  # five faults, then the answer

        again = CachedChat(backend_for(server), tmp_path / "cache.sqlite")
        second = again.complete(ask("a", "b"), desc="test")
    assert [r.text for r in second] == ["echo: a", "echo: b"] and all(r.cached for r in second)
    assert server.hits == {"a": 6, "b": 1}  # the re-run cost nothing
    assert again.stats()["calls"] == 0 and again.stats()["hit_rate"] == 1.0


def test_failure_names_the_cause_keeps_answers_and_rerun_makes_only_missing_calls(tmp_path):
    prompts = [f"q{i}" for i in range(12)]
    cache = tmp_path / "cache.sqlite"
    with FakeChatServer(delay=0.02) as server:
        # The last prompt fails: it starts after every other one, so exactly the other 11 are
        # answered (those still in flight when it gives up finish), whatever the thread timing.
        cached_chat = fail_one(server, cache, prompts, "q11", "503",
                               r"gave up after 3 attempts.*InternalServerError.*503", max_retries=2)
        assert server.hits["q11"] == 3
        answered = cached_chat.stats()["calls"]
        assert answered == 11
        assert len(cached_chat.store) == answered  # every answer reached the cache

        del server.always_fail["q11"]
        rerun = CachedChat(backend_for(server), cache)
        responses = rerun.complete(ask(*prompts), desc="test")
    assert [r.text for r in responses] == [f"echo: {p}" for p in prompts]
    assert rerun.stats()["calls"] == len(prompts) - answered
    assert rerun.stats()["cache_hits"] == answered
    assert all(server.hits[p] == 1 for p in prompts if p != "q11")  # nobody was asked twice


def test_client_errors_are_not_retried(tmp_path):
    with FakeChatServer() as server:
        server.always_fail["a"] = "400"
        cached_chat = CachedChat(backend_for(server), tmp_path / "cache.sqlite")
        with pytest.raises(LLMError, match="HTTP 400 \\(not retried\\)"):
            cached_chat.complete(ask("a"), desc="test")
    assert server.hits["a"] == 1


def test_structured_answers_are_validated_on_receipt_and_retried(tmp_path):
    valid = json.dumps({"user_preference": "likes noir", "item_attributes": "a dark thriller"})
    with FakeChatServer() as server:
        server.answers = {"good": valid, "stubborn": "no json here"}
        server.faults["good"] = ["prose"]
        cached_chat = CachedChat(backend_for(server, max_retries=2), tmp_path / "cache.sqlite")
        good, stubborn = cached_chat.complete(ask("good", "stubborn"), "t", response_model=Rationale)
        body = server.bodies[0]
    assert good.parsed == Rationale(user_preference="likes noir", item_attributes="a dark thriller")
    assert server.hits["good"] == 2  # prose, then valid JSON
    assert stubborn.parsed is None and stubborn.text == "no json here"
    assert server.hits["stubborn"] == 3  # invalid every time: returned after the retries
    schema = body["response_format"]["json_schema"]["schema"]
    assert body["response_format"]["type"] == "json_schema"
    assert schema == Rationale.model_json_schema()

    rerun = CachedChat(backend_for(server), tmp_path / "cache.sqlite")
    again = rerun.complete(ask("good", "stubborn"), "t", response_model=Rationale)
    assert again[0].parsed == good.parsed and again[1].parsed is None
    assert rerun.stats()["calls"] == 0


def test_reasoning_field_and_sampling_reach_the_server(tmp_path):
    with FakeChatServer() as server:
        server.answers = {"a": "Yes", "b": "<think>likes comedies</think> No"}
        server.reasoning = {"a": "The user liked three thrillers."}
        cached_chat = CachedChat(backend_for(server), tmp_path / "cache.sqlite")
        sampling = SamplingParams(max_tokens=7, temperature=0.6, repetition_penalty=1.1, seed=3)
        requests = [chat(("user", p), sampling=sampling) for p in ("a", "b")]
        a, b = cached_chat.complete(requests, desc="test")
        body = server.bodies[0]
    assert (a.text, a.reasoning) == ("Yes", "The user liked three thrillers.")
    assert (b.text, b.reasoning) == ("No", "likes comedies")
    assert body["max_completion_tokens"] == 7 and body["temperature"] == 0.6 and body["seed"] == 3
    assert body["repetition_penalty"] == 1.1  # vLLM's extension, sent as an extra body field


def test_concurrency_is_bounded(tmp_path):
    with FakeChatServer(delay=0.1) as server:
        cached_chat = CachedChat(backend_for(server, concurrency=3), tmp_path / "cache.sqlite")
        cached_chat.complete(ask(*[f"q{i}" for i in range(9)]), desc="test")
    assert server.max_in_flight == 3


def test_key_comes_from_the_environment_and_never_reaches_cache_or_keys(tmp_path, monkeypatch):
    secret = "sk-test-0123456789abcdef"
    monkeypatch.setenv("THINKREC_TEST_KEY", secret)
    cache = tmp_path / "cache.sqlite"
    with FakeChatServer() as first, FakeChatServer() as second:
        CachedChat(backend_for(first, api_key_env="THINKREC_TEST_KEY"), cache).complete(ask("a"), "t")
        assert first.headers[0]["authorization"] == f"Bearer {secret}"
        # Another URL and another key serve the same model: the cached answer applies.
        monkeypatch.setenv("THINKREC_TEST_KEY", "sk-other")
        other = CachedChat(backend_for(second, api_key_env="THINKREC_TEST_KEY"), cache)
        assert other.complete(ask("a"), "t")[0].cached
    assert second.hits["a"] == 0
    rows = sqlite3.connect(cache).execute("SELECT * FROM responses").fetchall()
    assert secret not in repr(rows) and first.base_url not in repr(rows)
    assert secret.encode() not in cache.read_bytes()


def test_missing_key_variable_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("THINKREC_ABSENT_KEY", raising=False)
    with FakeChatServer() as server:
        with pytest.raises(LLMError, match="THINKREC_ABSENT_KEY is not set"):
            backend_for(server, api_key_env="THINKREC_ABSENT_KEY")


def test_vllm_only_fields_can_be_left_out_for_hosted_apis(tmp_path):
    with FakeChatServer() as server:
        backend = backend_for(server, vllm_extensions=False)
        sampling = SamplingParams(repetition_penalty=1.2)
        CachedChat(backend, tmp_path / "c.sqlite").complete([chat(("user", "a"), sampling=sampling)])
    assert "repetition_penalty" not in server.bodies[0]


@pytest.mark.parametrize(
    "retry_after, cap, low, high",
    [
        ("1", 5.0, 0.95, 1.6),  # seconds
        ("in_2_seconds", 5.0, 0.9, 2.6),  # an HTTP date (one-second resolution)
        ("30", 0.3, 0.25, 0.9),  # capped at max_backoff_seconds
    ],
)
def test_retry_after_sets_the_delay(tmp_path, retry_after, cap, low, high):
    if retry_after == "in_2_seconds":
        retry_after = email.utils.formatdate(time.time() + 2, usegmt=True)
    with FakeChatServer() as server:
        server.faults["a"] = ["429"]
        server.error_headers = {"Retry-After": retry_after}
        cached_chat = CachedChat(backend_for(server, max_backoff_seconds=cap), tmp_path / "cache.sqlite")
        assert cached_chat.complete(ask("a"))[0].text == "echo: a"
    first, second = server.hit_times["a"]
    assert low <= second - first <= high  # backoff alone would wait 0-0.01 s here


def test_retries_are_counted_by_cause_logged_and_in_stats(tmp_path, caplog):
    with FakeChatServer(hang_seconds=0.6) as server:
        server.faults["a"] = ["429", "500", "timeout", "malformed", "empty"]
        server.faults["b"] = ["429"]
        cached_chat = CachedChat(backend_for(server), tmp_path / "cache.sqlite")
        with caplog.at_level(logging.INFO, logger="pipeline.llm.openai"):
            cached_chat.complete(ask("a", "b"), desc="test")
    assert cached_chat.stats()["retries"] == {"total": 6, "by_cause": {
        "http_429": 2, "http_500": 1, "timeout": 1, "malformed_answer": 1, "empty_answer": 1}}
    lines = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(lines) == 6 and {r.levelno for r in lines} == {logging.INFO}
    summary = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert summary == ["openai: 6 retries for 2 requests (empty_answer: 1, http_429: 2, http_500: 1, "
                       "malformed_answer: 1, timeout: 1)"]


def test_server_says_whether_to_retry(tmp_path):
    with FakeChatServer() as server:
        server.faults["a"] = ["400"]  # a client error, but the server says it is worth another try
        server.always_fail["b"] = "503"
        server.error_headers = {"x-should-retry": "true"}
        assert CachedChat(backend_for(server), tmp_path / "a.sqlite").complete(ask("a"))[0].text == "echo: a"
        server.error_headers = {"x-should-retry": "false"}
        with pytest.raises(LLMError, match=r"HTTP 503 \(not retried\)"):
            CachedChat(backend_for(server), tmp_path / "b.sqlite").complete(ask("b"))
    assert server.hits["a"] == 2 and server.hits["b"] == 1


@pytest.mark.parametrize("fault", ["leak401", "leak500"])
def test_key_echoed_by_the_server_is_masked_and_not_chained(tmp_path, monkeypatch, caplog, fault):
    secret = "sk-test-echo-0123456789"
    monkeypatch.setenv("THINKREC_TEST_KEY", secret)
    with FakeChatServer() as server:
        server.always_fail["a"] = fault
        cached_chat = CachedChat(backend_for(server, api_key_env="THINKREC_TEST_KEY", max_retries=1), tmp_path / "c.sqlite")
        with caplog.at_level(logging.INFO), pytest.raises(LLMError) as raised:
            cached_chat.complete(ask("a"))
    assert "Incorrect API key provided: Bearer ***" in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    printed = "".join(traceback.format_exception(raised.value))
    assert secret not in printed and secret not in caplog.text


def test_key_echoed_in_an_answer_is_masked(tmp_path, monkeypatch):
    secret = "sk-test-answer-0123456789"
    monkeypatch.setenv("THINKREC_TEST_KEY", secret)
    with FakeChatServer() as server:
        server.answers["a"] = f"your key is {secret}"
        answer = CachedChat(backend_for(server, api_key_env="THINKREC_TEST_KEY"), tmp_path / "c.sqlite").complete(ask("a"))
    assert answer[0].text == "your key is ***"
    assert secret.encode() not in (tmp_path / "c.sqlite").read_bytes()
