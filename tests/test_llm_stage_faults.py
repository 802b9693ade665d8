"""A teacher stage (keywords) on the openai backend against a faulty fake server: its metrics
count the retries by cause, a server that echoes the API key leaks it nowhere the stage
printed or wrote, and Ctrl-C ends it with one line counting the answers kept."""
from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from llm_fake_server import FakeChatServer
from tiny_ingest import write_params, write_tiny_ingest

import stages.keywords

REPO = Path(__file__).resolve().parents[1]
KEY_ENV = "THINKREC_TEST_KEY"


def openai_llm(server: FakeChatServer, root: Path, **overrides) -> dict:
    settings = {"base_url": server.base_url, "api_key_env": KEY_ENV, "concurrency": 2, "max_retries": 3,
                "timeout": 5.0, "backoff_seconds": 0.01, "max_backoff_seconds": 0.05, **overrides}
    return {"backend": "openai", "model": "teacher", "cache_path": str(root / ".llm_cache/responses.sqlite"),
            "openai": settings}


def test_stage_metrics_count_retries_by_cause(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-unused")
    write_tiny_ingest(tmp_path)
    with FakeChatServer() as server:
        server.faults["*"] = ["429", "429", "503"]  # taken by whichever requests come first
        server.error_headers = {"Retry-After": "0"}
        write_params(tmp_path, keywords={"max_items": 4}, llm=openai_llm(server, tmp_path))
        monkeypatch.chdir(tmp_path)
        stages.keywords.main()
    metrics = json.loads((tmp_path / stages.keywords.METRICS).read_text())
    assert metrics["llm"]["calls"] == 4
    assert metrics["llm"]["retries"] == {"total": 3, "by_cause": {"http_429": 2, "http_503": 1}}


def test_key_echoed_by_the_server_appears_nowhere_the_stage_printed_or_wrote(tmp_path):
    secret = "sk-live-DO-NOT-PRINT-4f9a2c7e1b"
    write_tiny_ingest(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO), KEY_ENV: secret}
    with FakeChatServer() as server:
        server.always_fail["*"] = "leak500"  # every answer: 500 with the Authorization header echoed
        write_params(tmp_path, keywords={"max_items": 2}, llm=openai_llm(server, tmp_path, max_retries=1))
        done = subprocess.run([sys.executable, "-m", "stages.keywords"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
    printed = done.stdout + done.stderr
    assert done.returncode != 0 and "Incorrect API key provided: Bearer ***" in printed  # echoed, then masked
    assert secret not in printed
    assert "retrying in" in printed  # the retry log line saw the echo too
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.suffix == ".sqlite" for path in written)
    assert not [path for path in written if secret.encode() in path.read_bytes()]


def test_key_put_where_its_variable_name_belongs_is_not_printed(tmp_path):
    secret = "sk-live-IN-PARAMS-BY-MISTAKE-77d1"
    write_tiny_ingest(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with FakeChatServer() as server:
        llm = openai_llm(server, tmp_path)
        llm["openai"]["api_key_env"] = secret  # the key itself, e.g. `-S llm.openai.api_key_env=sk-...`
        write_params(tmp_path, keywords={"max_items": 2}, llm=llm)
        done = subprocess.run([sys.executable, "-m", "stages.keywords"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
    printed = done.stdout + done.stderr
    assert done.returncode != 0 and "must be the NAME of the environment variable" in printed
    assert secret not in printed and server.hits == {}


def cached_answers(path: Path) -> int:
    if not path.exists():  # connecting would create it
        return 0
    with sqlite3.connect(path) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
        except sqlite3.OperationalError:  # the stage has not made the table yet
            return 0


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_prints_one_line_counting_the_cached_answers_and_exits_130(tmp_path, monkeypatch):
    """Before: a KeyboardInterrupt traceback, and the exit status of a process killed by SIGINT."""
    write_tiny_ingest(tmp_path)
    cache = tmp_path / ".llm_cache/responses.sqlite"
    env = {**os.environ, "PYTHONPATH": str(REPO), KEY_ENV: "sk-unused"}
    # a child of a process that ignores SIGINT (a background job) would ignore it too
    ignoring = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    with FakeChatServer(delay=0.5) as server:  # 12 items, 2 at a time: about 3 s of answers
        write_params(tmp_path, keywords={"max_items": 12}, llm=openai_llm(server, tmp_path))
        stage = subprocess.Popen([sys.executable, "-m", "stages.keywords"], cwd=tmp_path, env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 preexec_fn=_default_sigint if ignoring else None)
        deadline = time.monotonic() + 120
        while cached_answers(cache) < 2 and stage.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        stage.send_signal(signal.SIGINT)
        _, err = stage.communicate(timeout=60)
        kept, paid = cached_answers(cache), sum(server.answered.values())
        lines = [line for line in err.splitlines() if "interrupted" in line]
        assert stage.returncode == 130 and "Traceback" not in err, err
        assert len(lines) == 1, err
        said = re.fullmatch(r"stages\.keywords: interrupted: (\d+) answers are cached in (.+) \((\d+) from this run\);"
                            r" rerunning resumes from them", lines[0])
        assert said and said.group(2) == str(cache), lines[0]
        assert int(said.group(1)) == int(said.group(3)) == kept == paid and 2 <= kept < 12  # no paid answer lost
        server.delay = 0.0
        monkeypatch.setenv(KEY_ENV, "sk-unused")
        monkeypatch.chdir(tmp_path)
        stages.keywords.main()  # the rerun resumes: asks only the rest
    metrics = json.loads((tmp_path / stages.keywords.METRICS).read_text())
    assert (metrics["llm"]["cache_hits"], metrics["llm"]["calls"]) == (kept, 12 - kept)
    assert sum(server.answered.values()) == 12 and set(server.answered.values()) == {1}
