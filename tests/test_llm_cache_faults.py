"""A response cache that cannot be used: the error names the file (llm.cache_path), the file keeps
every answer it had, and a batch whose answers cannot be saved stops paying for more."""
import sqlite3
import threading
import time

import pytest
from test_llm_cache import ScriptedBackend, requests_for
from test_llm_openai import ask, backend_for

import pipeline.llm.cache as cache_module
from llm_fake_server import FakeChatServer
from pipeline.llm.cache import CachedChat, ResponseCacheError


def filled_cache(path, prompts=("a", "b")) -> bytes:
    cached_chat = CachedChat(ScriptedBackend(), path)
    cached_chat.complete(requests_for(*prompts))
    cached_chat.store.close()  # the last connection folds the WAL into the file
    return path.read_bytes()


def test_a_file_that_is_not_sqlite_is_an_error_naming_it_and_left_as_it_was(tmp_path):
    path = tmp_path / "responses.sqlite"
    path.write_bytes(b"answers I wrote by hand\n" * 50)
    with pytest.raises(ResponseCacheError, match=rf"llm.cache_path {path}: cannot open .*not a readable SQLite"):
        CachedChat(ScriptedBackend(), path)
    assert path.read_bytes() == b"answers I wrote by hand\n" * 50


def test_a_damaged_cache_is_an_error_naming_it_and_is_not_rewritten(tmp_path):
    path = tmp_path / "responses.sqlite"
    whole = filled_cache(path, [f"prompt {i} " + "x" * 400 for i in range(200)])
    path.write_bytes(whole[: len(whole) // 2])  # a copy cut short: its pages past the middle are gone
    backend = ScriptedBackend()
    with pytest.raises(ResponseCacheError, match=rf"llm.cache_path {path}: .*malformed"):
        CachedChat(backend, path).complete(requests_for("prompt 150 " + "x" * 400, "new"))
    assert backend.asked == []  # nothing paid for that could not be saved
    assert path.read_bytes() == whole[: len(whole) // 2]


def test_a_cache_path_that_cannot_be_opened_is_an_error_naming_it(tmp_path):
    path = tmp_path / "responses.sqlite"
    path.mkdir()  # e.g. a directory where the file should be
    with pytest.raises(ResponseCacheError, match=rf"llm.cache_path {path}: cannot open the response cache"):
        CachedChat(ScriptedBackend(), path)


class LockWhenAsked:
    """Another process's write lock on the cache, taken (in its own thread, as sqlite wants) as soon
    as the fake server has received `after` requests, held until the block ends."""

    def __init__(self, path, server: FakeChatServer, after: int):
        self.path, self.server, self.after = path, server, after
        self.taken, self.done = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self) -> None:
        while sum(self.server.hits.values()) < self.after and not self.done.is_set():
            time.sleep(0.002)
        holder = sqlite3.connect(self.path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # another process writing, for longer than we wait
        self.taken.set()
        self.done.wait()
        holder.execute("ROLLBACK")
        holder.close()

    def __enter__(self) -> "LockWhenAsked":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()


def test_a_cache_locked_by_another_process_stops_the_batch_and_keeps_its_answers(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "BUSY_TIMEOUT_SECONDS", 0.2)
    path = tmp_path / "responses.sqlite"
    prompts = [f"q{i}" for i in range(20)]
    with FakeChatServer(delay=0.5) as server:  # the lock is taken while the first requests wait
        CachedChat(backend_for(server, timeout=5.0), path).complete(ask("q0"))
        with LockWhenAsked(path, server, after=2) as lock:
            with pytest.raises(ResponseCacheError, match=rf"llm.cache_path {path}: cannot save an answer.*locked"):
                CachedChat(backend_for(server, concurrency=2, timeout=5.0), path).complete(ask(*prompts))
        assert lock.taken.is_set()
        assert sum(server.hits.values()) <= 1 + 4  # q0, then those in flight: not all 20
        server.delay = 0.0
        rerun = CachedChat(backend_for(server), path)  # the claims the failed batch left do not block it
        answers = rerun.complete(ask(*prompts))
    assert answers[0].cached and [r.text for r in answers] == [f"echo: {p}" for p in prompts]
    assert rerun.stats()["calls"] == 19


def test_a_cache_locked_before_the_batch_asks_nothing(tmp_path, monkeypatch):
    """Requests are claimed before they are sent: a cache nobody can write to pays for none."""
    monkeypatch.setattr(cache_module, "BUSY_TIMEOUT_SECONDS", 0.2)
    path = tmp_path / "responses.sqlite"
    with FakeChatServer() as server:
        CachedChat(backend_for(server), path).complete(ask("q0"))
        with LockWhenAsked(path, server, after=0) as lock:
            lock.taken.wait(5)
            with pytest.raises(ResponseCacheError, match=rf"llm.cache_path {path}: cannot claim requests.*locked"):
                CachedChat(backend_for(server), path).complete(ask("q0", "q1", "q2"))
    assert dict(server.hits) == {"q0": 1}
