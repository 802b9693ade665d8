"""A teacher stage (keywords) on the openai backend against a faulty fake server: its metrics
count the retries by cause, and a server that echoes the API key leaks it nowhere the stage
printed or wrote."""
from __future__ import annotations

import json
import os
import subprocess
import sys
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
