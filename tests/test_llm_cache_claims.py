"""LLM stages running at once over one response cache pay for each answer once: a process claims a
request before asking it, another that needs it waits for the answer, and a claim whose process is
gone is taken over. Processes here are real ones (subprocesses) against the fake OpenAI server,
whose request counts are what a paid API would bill."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from llm_fake_server import FakeChatServer
from params_base import section
from test_llm_openai import ask, backend_for

import pipeline.llm.cache as cache_module
from pipeline.llm.cache import CachedChat, ResponseStore

REPO = Path(__file__).resolve().parents[1]
PROMPTS = [f"prompt {i}" for i in range(20)]

# A process that builds its CachedChat, says it is ready, waits for "go", then asks for `prompts`
# and prints its answers and stats as JSON.
ASKER = """
import json, logging, sys, time
from pathlib import Path
from pipeline.llm.backends import build_backend
from pipeline.llm.cache import CachedChat
from pipeline.llm.chat import chat
from pipeline.llm.config import LLMConfig

logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
spec = json.loads(sys.argv[1])
client = CachedChat(build_backend(LLMConfig.model_validate(spec["llm"])), spec["cache"])
Path(spec["ready"]).touch()
while not Path(spec["go"]).exists():
    time.sleep(0.005)
answers = client.complete([chat(("system", "You answer briefly."), ("user", p)) for p in spec["prompts"]])
print(json.dumps({"texts": [a.text for a in answers], "stats": client.stats()}))
"""


def start_asker(server: FakeChatServer, root: Path, name: str, prompts: list[str], **openai) -> subprocess.Popen:
    settings = {"base_url": server.base_url, "api_key_env": None, "concurrency": 4, "max_retries": 0,
                "timeout": 30.0, "backoff_seconds": 0.01, "max_backoff_seconds": 0.05, **openai}
    spec = {"llm": section("llm", backend="openai", model="teacher", openai=settings),
            "cache": str(root / "responses.sqlite"), "prompts": prompts,
            "ready": str(root / f"{name}.ready"), "go": str(root / "go")}
    return subprocess.Popen([sys.executable, "-c", ASKER, json.dumps(spec)], cwd=root, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(condition, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_two_processes_on_one_empty_cache_ask_each_prompt_once(tmp_path):
    """Before: both read an empty cache, both asked all 20 (40 paid requests)."""
    with FakeChatServer(delay=0.2) as server:  # 20 prompts, 4 at a time: a second of overlap
        askers = [start_asker(server, tmp_path, name, PROMPTS) for name in ("a", "b")]
        wait_for(lambda: all((tmp_path / f"{name}.ready").exists() for name in ("a", "b")))
        (tmp_path / "go").touch()
        outputs = [asker.communicate(timeout=120) for asker in askers]
    for asker, (out, err) in zip(askers, outputs):
        assert asker.returncode == 0, err
    results = [json.loads(out) for out, _ in outputs]
    assert sum(server.hits.values()) == 20 and set(server.hits.values()) == {1}
    for result in results:
        assert result["texts"] == [f"echo: {p}" for p in PROMPTS]
    calls = [result["stats"]["calls"] for result in results]
    hits = [result["stats"]["cache_hits"] for result in results]
    assert sum(calls) == 20 and [c + h for c, h in zip(calls, hits)] == [20, 20]  # waited answers are hits
    waiting = [err for _, err in outputs if "waiting for its answers" in err]
    assert len(waiting) == 1 and f"(pid {askers[calls.index(20)].pid})" in waiting[0]


def test_a_claim_is_waited_for_while_its_process_lives_and_taken_over_when_it_dies(tmp_path):
    prompts = PROMPTS[:4]
    with FakeChatServer(hang_seconds=60) as server:
        server.faults["*"] = ["timeout"] * 4  # the first process's 4 requests hang: it is stuck asking
        (tmp_path / "go").touch()
        stuck = start_asker(server, tmp_path, "stuck", prompts)
        wait_for(lambda: sum(server.hits.values()) == 4)  # claimed, then sent
        waiter = CachedChat(backend_for(server, timeout=5.0), tmp_path / "responses.sqlite")
        done: dict = {}
        thread = threading.Thread(target=lambda: done.update(answers=waiter.complete(ask(*prompts))))
        thread.start()
        time.sleep(1.0)
        assert thread.is_alive() and sum(server.hits.values()) == 4  # waits, asks nothing while it lives
        stuck.kill()
        stuck.communicate()
        thread.join(timeout=30)
        assert not thread.is_alive()
    assert [answer.text for answer in done["answers"]] == [f"echo: {p}" for p in prompts]
    assert waiter.stats()["calls"] == 4 and dict(server.hits) == {p: 2 for p in prompts}


def test_a_claim_from_another_machine_is_taken_over_after_its_lease(tmp_path, monkeypatch):
    path = tmp_path / "responses.sqlite"
    keys = [request.cache_key("teacher") for request in ask("x", "y")]
    monkeypatch.setattr(cache_module, "_HOST", "elsewhere")
    assert ResponseStore(path).claim(keys)[1] == keys  # claimed by a process on "elsewhere"
    monkeypatch.undo()
    monkeypatch.setattr(cache_module, "CLAIM_LEASE_SECONDS", 0.5)
    with FakeChatServer() as server:
        started = time.monotonic()
        answers = CachedChat(backend_for(server), path).complete(ask("x", "y"))
        waited = time.monotonic() - started
    assert [answer.text for answer in answers] == ["echo: x", "echo: y"]
    assert waited >= 0.4 and dict(server.hits) == {"x": 1, "y": 1}
