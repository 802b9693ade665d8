"""JSON-lines streams (Amazon, Yelp): one object per line, parsed lazily, bad lines reported."""
from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Iterator

from pipeline.ingest.lines import LineIssues, iter_lines


def iter_objects(path: Path, issues: LineIssues, python_literals: bool = False) -> Iterator[tuple[int, str, dict]]:
    """Yield (line number, 'file:line', object) per non-blank line.

    `python_literals`: lines that are not JSON are tried as Python dict literals (Amazon 2014
    metadata is written that way: single quotes, True/False).
    """
    for number, line in iter_lines(path, issues):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        record = _parse(line, python_literals)
        if not isinstance(record, dict):
            issues.report(where, _not_an_object(line, python_literals))
            continue
        yield number, where, record


def _not_an_object(line: str, python_literals: bool) -> str:
    if line.startswith("\ufeff"):  # iter_lines keeps a byte order mark opening the file
        return "bad_json: starts with a byte order mark (U+FEFF); save the file without it"
    return "bad_json: not a JSON object" + (" or Python dict" if python_literals else "")


def _parse(line: str, python_literals: bool) -> object:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        if not python_literals:
            return None
    try:
        return ast.literal_eval(line)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def require_fields(record: dict, fields: tuple[str, ...], where: str, issues: LineIssues) -> bool:
    """True when every field is present and not null, else report the first missing one."""
    for field in fields:
        if record.get(field) is None:
            issues.report(where, f"missing_field: '{field}'")
            return False
    return True

