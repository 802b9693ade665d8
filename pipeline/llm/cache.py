"""`CachedChat`: every LLM call goes through here, so no run ever pays for the same request twice.

Usage (a stage):

    chat_llm = CachedChat(build_backend(config), config.cache_path)
    answers = chat_llm.complete(requests, desc="keywords")        # list[ChatResponse], in order
    metrics["llm"] = chat_llm.stats()  # calls, cache_hits, hit_rate, tokens_in, tokens_out, wall_seconds, retries

- The cache is a SQLite file keyed by `ChatRequest.cache_key(backend.model_name)`: a hash of the
  model, messages, sampling parameters and schema, never the API key or server URL. Backends that
  serve local weights name the model by `model_identity(path)`, a hash of the weight and tokenizer
  files, so new files behind the same path never hit answers of the old ones.
- Cache hits come back with `cached=True` and cost nothing. Misses (deduplicated) go to the
  backend in one call; the backend batches them (local/vllm) or keeps many in flight (openai).
- Each answer is written to the cache the moment it arrives, so a crash or an LLMError loses only
  the requests not yet answered; the re-run makes only those calls.
- A cache that cannot be used (locked by another process past BUSY_TIMEOUT_SECONDS, unreadable,
  not SQLite, damaged) raises ResponseCacheError naming the file (`llm.cache_path`) and is never
  rewritten or recreated: its answers stay for the run that can read it. A write that fails stops
  the batch (the backend cancels what has not started), so nothing more is paid for unsaved.
- Processes sharing a cache never pay twice for one request: a process claims the requests it
  misses (one write transaction, so exactly one process gets each) before asking the backend; a
  process that finds a request claimed by another live process waits for that answer (counted as a
  cache hit). A claim whose process is gone (no such pid on this machine; from another machine: no
  answer for CLAIM_LEASE_SECONDS) is taken over, so a killed run never blocks the next.
- Ctrl-C: the answers received are saved, the claims released, and `Interrupted` (a
  KeyboardInterrupt that run_stage prints as one line) says how many answers the cache holds.
- Structured output: pass `response_model=MyModel` (requests without a schema get MyModel's).
  Answers are validated on receipt (the openai backend retries invalid ones); each response's
  `.parsed` is the MyModel instance, or None when the answer stayed invalid. Invalid answers are
  cached too (they were paid for): the caller falls back and counts them.
"""
from __future__ import annotations

import hashlib
import inspect
import logging
import os
import socket
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

from pydantic import BaseModel
from tqdm import tqdm

from pipeline.errors import Interrupted
from pipeline.llm.chat import (
    ChatBackend,
    ChatRequest,
    ChatResponse,
    LLMError,
    StructuredOutputError,
    parse_structured,
)

# Backends that cannot report answers one by one get their misses in chunks of this many.
FALLBACK_CHUNK = 16
# Bytes read per hashing step when fingerprinting model files.
_HASH_BLOCK = 1 << 22
# (directory, its files' stats) -> digest: each file set is hashed once per process.
_DIGESTS: dict[tuple, str] = {}
# Seconds a read or write waits while another process holds the cache's lock, then fails.
BUSY_TIMEOUT_SECONDS = 60.0
# Seconds between looks at the cache while another process asks requests this one needs.
CLAIM_POLL_SECONDS = 0.2
# A claim made on another machine (whose process cannot be checked) is taken over after this many
# seconds without an answer from its owner (each answer renews all of the owner's claims).
CLAIM_LEASE_SECONDS = 600.0
# SQLite caps the parameters bound per query.
_CHUNK = 500
_HOST = socket.gethostname()
# Keys this process is asking the backend right now: its own live claims.
_ASKING: set[str] = set()
_ASKING_LOCK = threading.Lock()
log = logging.getLogger("pipeline.llm.cache")


class ResponseCacheError(LLMError):
    """The response cache cannot be read or written; the message names the file, left as it was."""


@contextmanager
def cache_errors(path: Path, doing: str):
    """Turn sqlite's and the OS's errors into a ResponseCacheError that names the file and says what
    to do; nothing here deletes or recreates the file, whatever went wrong."""
    try:
        yield
    except (sqlite3.Error, OSError) as err:
        raise ResponseCacheError(f"llm.cache_path {path}: cannot {doing}: {type(err).__name__}: {err}. "
                                 f"{_cache_advice(err)}") from err


def _cache_advice(err: Exception) -> str:
    kept = "Its answers are kept (the file is left as it is)"
    if "locked" in str(err):
        return (f"Another process (another run on the same cache?) held it longer than"
                f" {BUSY_TIMEOUT_SECONDS:g} s. {kept}: rerun when that one is done, or set llm.cache_path to another file.")
    if isinstance(err, sqlite3.DatabaseError) and not isinstance(err, sqlite3.OperationalError):
        return (f"It is not a readable SQLite response cache. {kept}: move it aside (`sqlite3 FILE .recover`"
                " may rescue its answers) or set llm.cache_path to another file.")
    return f"{kept}: check its permissions and the disk, or set llm.cache_path to another file."


class ResponseStore:
    """A thread-safe SQLite table of answers: key -> (text, reasoning, tokens_in, tokens_out)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        with cache_errors(self.path, "open the response cache"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One connection shared by threads (behind the lock); WAL lets other processes read/write.
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT, text TEXT,"
                " reasoning TEXT, tokens_in INTEGER, tokens_out INTEGER, created REAL)"
            )
            # Requests some process is asking now: (key, its machine, its pid, last renewed, epoch s).
            self._db.execute("CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, host TEXT, pid INTEGER,"
                             " renewed REAL)")
            self._db.commit()

    def get_many(self, keys: Sequence[str]) -> dict[str, ChatResponse]:
        with self._lock, cache_errors(self.path, "read cached answers"):
            return self._answers(keys)

    def _answers(self, keys: Sequence[str]) -> dict[str, ChatResponse]:
        found: dict[str, ChatResponse] = {}
        query = "SELECT key, text, reasoning, tokens_in, tokens_out FROM responses WHERE key IN ({})"
        for key, text, reasoning, tokens_in, tokens_out in self._execute_in(query, keys):
            found[key] = ChatResponse(text=text, reasoning=reasoning, tokens_in=tokens_in,
                                      tokens_out=tokens_out, cached=True)
        return found

    def _execute_in(self, query: str, keys: Sequence[str], *before: object) -> list[tuple]:
        """Run `query` (parameters `before`, then one `IN ({})` slot for `keys`) over chunks of keys
        SQLite accepts; its rows."""
        keys = list(dict.fromkeys(keys))
        rows = []
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            rows += self._db.execute(query.format(",".join("?" * len(chunk))), [*before, *chunk]).fetchall()
        return rows

    def claim(self, keys: Sequence[str]) -> tuple[dict[str, ChatResponse], list[str], dict[str, str]]:
        """Of `keys`: (answers found now, keys this process now claims, {key: owner} of those a live
        process claimed first). One write transaction: of two processes claiming one key, one gets it."""
        now = time.time()
        # IMMEDIATE: the write lock before reading, so no two claimers decide on the same state
        with self._transaction("claim requests", "BEGIN IMMEDIATE"):
            found = self._answers(keys)
            owners = {key: owner for key, *owner in self._execute_in(
                "SELECT key, host, pid, renewed FROM claims WHERE key IN ({})", keys)}
            theirs = {key: _owner_name(*owners[key][:2]) for key in owners
                      if key not in found and _claim_is_live(key, *owners[key], now)}
            mine = [key for key in dict.fromkeys(keys) if key not in found and key not in theirs]
            self._db.executemany("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?)",
                                 [(key, _HOST, os.getpid(), now) for key in mine])
        return found, mine, theirs

    def release(self, keys: Sequence[str]) -> None:
        """Drop this process's claims on `keys` (failed or interrupted: another process may ask them)."""
        with self._transaction("release claims"):
            self._execute_in("DELETE FROM claims WHERE host = ? AND pid = ? AND key IN ({})", keys, _HOST, os.getpid())

    def put(self, key: str, model: str, response: ChatResponse) -> None:
        """Save an answer; its claim goes (nobody needs to ask it again) and this process's other
        claims are renewed (it is alive and answering)."""
        now = time.time()
        with self._transaction("save an answer"):
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, model, response.text, response.reasoning, response.tokens_in, response.tokens_out, now),
            )
            self._db.execute("DELETE FROM claims WHERE key = ?", (key,))
            self._db.execute("UPDATE claims SET renewed = ? WHERE host = ? AND pid = ?", (now, _HOST, os.getpid()))

    @contextmanager
    def _transaction(self, doing: str, begin: str | None = None):
        """Writes under the thread lock, committed whole or rolled back: a failed write must not
        leave the connection inside a transaction (holding an old snapshot, refusing the next BEGIN)."""
        with self._lock, cache_errors(self.path, doing):
            if begin is not None:
                self._db.execute(begin)
            try:
                yield
                self._db.commit()
            except BaseException:
                self._db.rollback()
                raise

    def __len__(self) -> int:
        with self._lock, cache_errors(self.path, "count cached answers"):
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _claim_is_live(key: str, host: str, pid: int, renewed: float, now: float) -> bool:
    """Whether a claim's process may still answer it: this process while it asks `key`, another
    process on this machine while its pid exists, one elsewhere until its lease runs out."""
    if host != _HOST:
        return now - renewed < CLAIM_LEASE_SECONDS
    if pid == os.getpid():  # a claim this process left (a write failed): live only while asked
        with _ASKING_LOCK:
            return key in _ASKING
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _owner_name(host: str, pid: int) -> str:
    return f"pid {pid}" if host == _HOST else f"pid {pid} on {host}"


class CachedChat:
    """A backend behind a persistent response cache, with call/hit/token/time counters."""

    def __init__(self, backend: ChatBackend, cache_path: str | Path):
        self.backend = backend
        self.store = ResponseStore(cache_path)
        self._lock = threading.Lock()
        self._counts = {"calls": 0, "cache_hits": 0, "tokens_in": 0, "tokens_out": 0}
        self._wall = 0.0
        params = inspect.signature(backend.complete).parameters
        self._streams = "on_answer" in params  # backend reports answers one by one
        self._validates = "validate" in params

    def complete(
        self,
        requests: Sequence[ChatRequest],
        desc: str = "llm",
        response_model: type[BaseModel] | None = None,
    ) -> list[ChatResponse]:
        """Answer `requests` in order: from the cache where possible, else from the backend.
        Ctrl-C raises `Interrupted`, whose message counts the answers kept."""
        started = time.perf_counter()
        try:
            return self._complete(requests, desc, response_model)
        except KeyboardInterrupt:
            raise self._interrupted() from None
        finally:
            with self._lock:
                self._wall += time.perf_counter() - started

    def _complete(self, requests: Sequence[ChatRequest], desc: str, response_model) -> list[ChatResponse]:
        if response_model is not None:
            requests = [_with_schema(request, response_model) for request in requests]
        model = self.backend.model_name
        keys = [request.cache_key(model) for request in requests]
        answers = self.store.get_many(keys)
        missing = {key: request for key, request in zip(keys, requests) if key not in answers}
        with self._lock:
            self._counts["cache_hits"] += len(requests) - len(missing)
        if missing:
            answers.update(self._answer_missing(missing, desc, response_model))
        responses = [answers[key].model_copy() for key in keys]
        if response_model is not None:
            for response in responses:
                response.parsed = _parse_or_none(response, response_model)
        return responses

    def _answer_missing(self, missing: dict[str, ChatRequest], desc: str, response_model) -> dict:
        """Answers to `missing`: asked here for the keys this process claims, awaited from the process
        that claimed the others first (cache hits: this run does not pay for them)."""
        missing = dict(missing)
        answers: dict[str, ChatResponse] = {}
        waited = False
        while missing:
            found, mine, theirs = self.store.claim(list(missing))
            if mine:
                answers.update(self._ask_claimed({key: missing[key] for key in mine}, desc, response_model))
            with self._lock:
                self._counts["cache_hits"] += len(found)
            answers.update(found)
            for key in [*found, *mine]:
                del missing[key]
            if theirs and not waited:
                owners = ", ".join(sorted(set(theirs.values())))
                log.info("%s: %d requests are being asked by another process (%s); waiting for its answers",
                         desc, len(theirs), owners)
                waited = True
            if theirs and not mine:
                time.sleep(CLAIM_POLL_SECONDS)
        return answers

    def _ask_claimed(self, claimed: dict[str, ChatRequest], desc: str, response_model) -> dict:
        """Ask the backend for requests this process claimed; whatever happens, drop the claims
        left (unanswered after a failure or Ctrl-C) so another process may ask them at once."""
        with _ASKING_LOCK:
            _ASKING.update(claimed)
        try:
            return self._ask_backend(claimed, desc, response_model)
        finally:
            with _ASKING_LOCK:
                _ASKING.difference_update(claimed)
            try:
                self.store.release(list(claimed))
            except ResponseCacheError as err:  # e.g. locked: the claims lapse, this process no longer asks them
                log.warning("%s", err)

    def _interrupted(self) -> Interrupted:
        """Ctrl-C's one line: what the cache holds now, so the user knows the rerun resumes."""
        try:
            held = f"{len(self.store)} answers are cached in {self.store.path}"
        except (ResponseCacheError, KeyboardInterrupt):
            held = f"the answers received are cached in {self.store.path}"
        with self._lock:
            calls = self._counts["calls"]
        return Interrupted(f"interrupted: {held} ({calls} from this run); rerunning resumes from them")

    def _ask_backend(self, missing: dict[str, ChatRequest], desc: str, response_model) -> dict:
        keys, requests = list(missing), list(missing.values())
        answered: dict[str, ChatResponse] = {}
        model = self.backend.model_name
        with tqdm(total=len(requests), desc=desc, unit="req", mininterval=1.0) as bar:

            def record(index: int, response: ChatResponse) -> None:
                response = response.model_copy(update={"cached": False})
                self.store.put(keys[index], model, response)
                answered[keys[index]] = response
                with self._lock:
                    self._counts["calls"] += 1
                    self._counts["tokens_in"] += response.tokens_in
                    self._counts["tokens_out"] += response.tokens_out
                bar.update(1)

            kwargs = {}
            if response_model is not None and self._validates:
                kwargs["validate"] = lambda response: parse_structured(response, response_model)
            if self._streams:
                self.backend.complete(requests, on_answer=record, **kwargs)
            else:
                for start in range(0, len(requests), FALLBACK_CHUNK):
                    chunk = self.backend.complete(requests[start : start + FALLBACK_CHUNK], **kwargs)
                    for offset, response in enumerate(chunk):
                        record(start + offset, response)
        return answered

    def stats(self) -> dict:
        """Counters since this object was made: `calls` went to the backend, `cache_hits` did not."""
        with self._lock:
            counts = dict(self._counts)
            total = counts["calls"] + counts["cache_hits"]
            counts["hit_rate"] = counts["cache_hits"] / total if total else 0.0
            counts["wall_seconds"] = round(self._wall, 3)
        # retries by cause, from backends that retry (openai): {"total": n, "by_cause": {...}}
        by_cause = self.backend.retry_counts() if hasattr(self.backend, "retry_counts") else {}
        counts["retries"] = {"total": sum(by_cause.values()), "by_cause": by_cause}
        return counts


def _with_schema(request: ChatRequest, response_model: type[BaseModel]) -> ChatRequest:
    schema = response_model.model_json_schema()
    if request.response_schema is None:
        return request.model_copy(update={"response_schema": schema})
    if request.response_schema != schema:
        raise ValueError(f"request carries a schema other than {response_model.__name__}'s")
    return request


def _parse_or_none(response: ChatResponse, response_model: type[BaseModel]):
    try:
        return parse_structured(response, response_model)
    except StructuredOutputError:
        return None


def model_identity(model: str) -> str:
    """The model's name in cache keys: for a local directory, "sha256:<digest>" of every file in it
    (weights, config, tokenizer; hidden files aside), so a path keeps no stale answers when its files
    change and a copy elsewhere shares the cache; anything else (a hub id, a served name) unchanged."""
    root = Path(model)
    if not root.is_dir():
        return model
    files = sorted(
        (path.relative_to(root).as_posix(), path)
        for path in root.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )
    if not files:
        raise ValueError(f"{root}: model directory holds no files")
    stats = tuple((name, _stat_key(path)) for name, path in files)
    key = (str(root.resolve()), stats)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        for name, path in files:
            digest.update(f"{name}\0{path.stat().st_size}\0".encode())
            with open(path, "rb") as handle:
                while block := handle.read(_HASH_BLOCK):
                    digest.update(block)
        _DIGESTS[key] = f"sha256:{digest.hexdigest()}"
    return _DIGESTS[key]


def _stat_key(path: Path) -> tuple[int, int, int]:
    """(size, mtime_ns, inode): any of them changes when a file is rewritten or swapped."""
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns, stat.st_ino
