"""What the openai backend does with servers that misbehave after answering 200: bodies of every odd
shape, a failure in the middle of a batch, an answer dribbled byte by byte, a key put where its
variable's name belongs. Faults are injected by the fake server on loopback (llm_fake_server)."""
import logging
import time
import traceback

import pytest
from test_llm_openai import ask, backend_for, fail_one

from llm_fake_server import FakeChatServer
from params_base import section
from pipeline.llm.cache import CachedChat
from pipeline.llm.chat import LLMError
from pipeline.llm.config import LLMConfig

# fault -> what the final error must say about the body (every one is retried first)
MALFORMED = {
    "no_choices": r"body has no 'choices'",
    "empty_choices": r"'choices' is empty",
    "null_choice": r"choices\[0\] is null, not an object",
    "choices_object": r"'choices' is an object, not a list",
    "null_message": r"choices\[0\]\.message is null, not an object",
    "null_content": r"content is null, no reasoning",
    "number_content": r"choices\[0\]\.message\.content is a number, not a string",
    "list_content": r"choices\[0\]\.message\.content is a list, not a string",
    "number_reasoning": r"choices\[0\]\.message\.reasoning_content is a number",
    "bad_usage": r"usage\.prompt_tokens is 'many', not a token count",
    "error_200": r"body is an error, not a completion: .*model overloaded",
    "not_object": r"body is a list, not a JSON object",
    "html": r"body is not JSON .*502 Bad Gateway",
}


@pytest.mark.parametrize("fault", sorted(MALFORMED))
def test_every_odd_body_is_retried_then_an_llm_error_naming_it(tmp_path, fault):
    with FakeChatServer() as server:
        server.always_fail["a"] = fault
        backend = backend_for(server, max_retries=1)
        with pytest.raises(LLMError, match=r"gave up after 2 attempts; last error: \w+AnswerError: .*" + MALFORMED[fault]):
            CachedChat(backend, tmp_path / "c.sqlite").complete(ask("a"))
    assert server.hits["a"] == 2
    assert set(backend.retry_counts()) <= {"malformed_answer", "empty_answer"}


def test_odd_bodies_then_a_proper_one_give_the_answer(tmp_path):
    with FakeChatServer() as server:
        server.faults["a"] = ["null_message", "list_content", "html"]
        cached_chat = CachedChat(backend_for(server), tmp_path / "c.sqlite")
        assert cached_chat.complete(ask("a"))[0].text == "echo: a"
    assert cached_chat.stats()["retries"] == {"total": 3, "by_cause": {"malformed_answer": 3}}


def test_an_answer_without_usage_is_kept_with_zero_tokens_and_a_warning(tmp_path, caplog):
    with FakeChatServer() as server:
        server.faults["a"] = ["no_usage"]
        cached_chat = CachedChat(backend_for(server), tmp_path / "c.sqlite")
        with caplog.at_level(logging.WARNING, logger="pipeline.llm.openai"):
            a, b = cached_chat.complete(ask("a", "b c"))
    assert (a.text, a.tokens_in, a.tokens_out) == ("echo: a", 0, 0)  # paid for: never asked again
    assert (b.tokens_in, b.tokens_out) == (2, 3)
    assert server.hits["a"] == 1
    assert "openai: 1 answers came without usage counts" in caplog.text


def test_an_unforeseen_error_in_a_request_is_an_llm_error_not_a_raw_one():
    def broken_validator(response):
        return {}["missing"]  # a KeyError nobody planned for

    with FakeChatServer() as server:
        backend = backend_for(server)
        requests = [r.model_copy(update={"response_schema": {"type": "object"}}) for r in ask("a")]
        with pytest.raises(LLMError, match=r"failed \(not retried\); last error: KeyError"):
            backend.complete(requests, validate=broken_validator)
    assert server.hits["a"] == 1


def test_a_failed_request_cancels_the_rest_and_every_answer_received_is_cached(tmp_path):
    prompts = [f"q{i}" for i in range(40)]
    cache = tmp_path / "c.sqlite"
    with FakeChatServer(delay=0.05) as server:
        cached_chat = fail_one(server, cache, prompts, "q2", "null_message", "message is null", max_retries=1)
        sent = sum(server.hits.values())
        assert sent <= 20  # 4 in flight for about 3 round trips, not all 40
        cached = len(cached_chat.store)
        assert cached == sum(server.answered.values()) == cached_chat.stats()["calls"]

        del server.always_fail["q2"]
        rerun = CachedChat(backend_for(server), cache)
        assert [r.text for r in rerun.complete(ask(*prompts))] == [f"echo: {p}" for p in prompts]
    assert rerun.stats()["calls"] == 40 - cached  # the rerun pays only the missing
    assert all(server.answered[p] == 1 for p in prompts)  # nothing was paid for twice


def test_timeout_bounds_a_whole_attempt_when_the_server_dribbles(tmp_path):
    with FakeChatServer(dribble_seconds=3.0) as server:
        server.always_fail["slow"] = "dribble"  # one byte at a time: every read is quick
        server.faults["once"] = ["dribble"]
        backend = backend_for(server, timeout=0.4, max_retries=1)
        started = time.monotonic()
        with pytest.raises(LLMError, match=r"gave up after 2 attempts.*AttemptTimeout.*llm\.openai\.timeout = 0\.4 s"):
            backend.complete(ask("slow"))
        assert time.monotonic() - started < 1.5  # two attempts of 0.4 s, not two of 3 s
        started = time.monotonic()
        assert CachedChat(backend, tmp_path / "c.sqlite").complete(ask("once"))[0].text == "echo: once"
        assert time.monotonic() - started < 1.5
    assert backend.retry_counts() == {"timeout": 2}


def test_a_key_put_in_api_key_env_is_never_shown():
    secret = "sk-live-PUT-IN-THE-WRONG-PLACE-91c2"
    with FakeChatServer() as server:
        with pytest.raises(LLMError, match="must be the NAME of the environment variable") as raised:
            backend_for(server, api_key_env=secret)
        settings = dict(base_url=server.base_url, api_key_env=secret, concurrency=1, max_retries=0, timeout=1.0,
                        backoff_seconds=0.0, max_backoff_seconds=0.0, vllm_extensions=True)
        config = LLMConfig.model_validate(section("llm", backend="openai", model="teacher", openai=settings))
    assert secret not in "".join(traceback.format_exception(raised.value))
    assert secret not in repr(config) and secret not in str(config) and secret not in repr(config.openai)
    assert "api_key_env='OPENAI_API_KEY'" in repr(config.model_copy(update={"openai": config.openai.model_copy(
        update={"api_key_env": "OPENAI_API_KEY"})}))  # a variable's name is shown: it is no secret


def test_the_backend_holds_the_key_where_no_repr_shows_it(monkeypatch):
    secret = "sk-test-held-0123456789"
    monkeypatch.setenv("THINKREC_TEST_KEY", secret)
    with FakeChatServer() as server:
        backend = backend_for(server, api_key_env="THINKREC_TEST_KEY")
        backend.complete(ask("a"))
        assert server.headers[0]["authorization"] == f"Bearer {secret}"
    assert secret not in repr(vars(backend))
