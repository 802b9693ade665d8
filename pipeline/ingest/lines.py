"""Streaming raw text files line by line (plain or .gz) with a byte progress bar, and the
policy for bad lines: raise an error naming file and line, or skip and count."""
from __future__ import annotations

import codecs
import gzip
import os
import zlib
from collections import Counter
from pathlib import Path
from typing import Iterator, Literal

from tqdm import tqdm
from pipeline.errors import BadInput, MissingInput

BadLinePolicy = Literal["error", "skip"]
_PROGRESS_EVERY = 20_000  # lines between progress-bar updates (tell() on gz is not free)
QUOTE_LIMIT = 60  # characters of a raw value an error message shows (a NUL-filled id can be megabytes)


class IngestError(BadInput):
    """Raw input the ingest stage cannot use; the message names the file and line or field."""


def quoted(value: object) -> str:
    """`value` as a message shows it: its repr (control and invisible characters escaped), cut to
    QUOTE_LIMIT characters with "..." and the length when longer, so a message stays one short line
    whatever the raw file holds."""
    text = repr(value)
    if len(text) <= QUOTE_LIMIT:
        return text
    size = f" ({len(value)} characters)" if isinstance(value, str) else ""
    return f"{text[:QUOTE_LIMIT]}...{size}"


class LineIssues:
    """Counts skipped lines per reason, or raises on the first one when the policy is 'error'."""

    def __init__(self, policy: BadLinePolicy = "error", hint: str = "ingest.on_bad_line") -> None:
        self.policy = policy
        self.hint = hint
        self.counts: Counter[str] = Counter()
        self.examples: list[str] = []  # the first few skipped locations, for the card

    def report(self, where: str, reason: str) -> None:
        message = f"{where}: {reason}"
        if self.policy == "error":
            raise IngestError(f"{message} (set {self.hint}: skip to skip and count such lines)")
        self.counts[reason.split(":")[0]] += 1
        if len(self.examples) < 5:
            self.examples.append(message)

    def total(self) -> int:
        return sum(self.counts.values())


def iter_lines(
    path: str | os.PathLike, issues: LineIssues | None = None, encoding: str = "utf-8", desc: str | None = None
) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, line without its newline); never holds more than one line.

    Each line is decoded on its own, so a line that is not valid `encoding` text is reported at its
    own number: to `issues` (an error, or skipped and counted), or as an error without `issues`.
    `.gz` files are decompressed on the fly; progress is shown in compressed bytes read.
    """
    path = Path(path)
    if not path.exists():
        raise MissingInput(f"{path}: raw file not found (check ingest.source.path and file names)")
    size = path.stat().st_size
    with open(path, "rb") as raw, tqdm(
        total=size, unit="B", unit_scale=True, desc=desc or path.name, leave=False, mininterval=1.0
    ) as bar:
        stream = gzip.GzipFile(fileobj=raw) if path.suffix == ".gz" else raw
        number = 0
        try:
            for number, data in enumerate(stream, start=1):  # split at b"\n": safe in UTF-8 and latin-1
                if number % _PROGRESS_EVERY == 0:
                    bar.update(raw.tell() - bar.n)
                try:
                    line = _decode(data, encoding, number)
                except UnicodeDecodeError as err:
                    byte = f"byte 0x{data[err.start]:02x} at column {err.start + 1}"
                    reason = f"bad_encoding: not valid {encoding} text ({byte})"
                    if issues is None:
                        raise IngestError(f"{path}:{number}: {reason}") from None
                    issues.report(f"{path}:{number}", reason)
                    continue
                yield number, line.rstrip("\r\n")
        except (EOFError, gzip.BadGzipFile, zlib.error) as err:
            raise IngestError(f"{path}: corrupt or truncated gzip data after line {number} ({err})") from err
        bar.update(size - bar.n)


def _decode(data: bytes, encoding: str, number: int) -> str:
    """One line's text. A UTF-8 byte order mark opening the file stays one U+FEFF in every encoding:
    read as latin-1 it would be three letters ('ï»¿') glued to the first id, a new user that
    prints almost alike; as U+FEFF the id check names it."""
    bom = len(codecs.BOM_UTF8) if number == 1 and data.startswith(codecs.BOM_UTF8) else 0
    try:
        return "\ufeff" * (bom > 0) + data[bom:].decode(encoding)
    except UnicodeDecodeError as err:  # positions in the whole line, for the message
        raise UnicodeDecodeError(err.encoding, data, err.start + bom, err.end + bom, err.reason) from None
