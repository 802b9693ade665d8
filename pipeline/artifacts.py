"""Reading and writing the Parquet/JSON artifacts that cross stage boundaries.

Writes are atomic (temporary file in the same directory, then rename), so a crashed run never
leaves a half-written artifact. Reads validate the declared schema and name the file and field
that do not match.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq


class SchemaError(ValueError):
    """An artifact on disk does not have the columns or types its reader declares."""


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def replace_directory(tmp: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Put the fully written directory `tmp` at `dest`: an old `dest` is moved aside first and
    deleted only after the rename, so a crash never leaves `dest` missing or half-written."""
    tmp, dest = Path(tmp), Path(dest)
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.replace(dest, old)
    os.replace(tmp, dest)
    if old is not None:
        shutil.rmtree(old)
    return dest


def write_table(table: pa.Table, path: str | os.PathLike, schema: pa.Schema | None = None) -> Path:
    """Write `table` to Parquet atomically, cast to `schema` first when one is given."""
    if schema is not None:
        validate_schema(table.schema, schema, str(path))
        table = table.select(schema.names).cast(schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return Path(path)


def write_frame(frame, path: str | os.PathLike, schema: pa.Schema | None = None) -> Path:
    """Write a pandas DataFrame to Parquet atomically (without its index)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return write_table(table, path, schema)


def read_table(path: str | os.PathLike, schema: pa.Schema | None = None) -> pa.Table:
    """Read a Parquet artifact; with `schema`, check its fields and cast to the declared types."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: artifact not found (has the stage that writes it run?)")
    table = pq.read_table(path)
    if schema is None:
        return table
    validate_schema(table.schema, schema, str(path))
    return table.select(schema.names).cast(schema)


def read_frame(path: str | os.PathLike, schema: pa.Schema | None = None):
    """Read a Parquet artifact into pandas, validated against `schema` when given."""
    return read_table(path, schema).to_pandas()


def validate_schema(actual: pa.Schema, expected: pa.Schema, where: str) -> None:
    """Raise SchemaError naming `where` and the field when `actual` cannot serve as `expected`."""
    for field in expected:
        index = actual.get_field_index(field.name)
        if index < 0:
            raise SchemaError(f"{where}: missing column '{field.name}' ({field.type})")
        got = actual.field(index).type
        if got != field.type and not _castable(got, field.type):
            raise SchemaError(f"{where}: column '{field.name}' has type {got}, expected {field.type}")


def _castable(got: pa.DataType, want: pa.DataType) -> bool:
    numeric = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean)
    if any(check(got) for check in numeric) and any(check(want) for check in numeric):
        return True
    if pa.types.is_null(got):
        return True
    if (pa.types.is_string(got) or pa.types.is_large_string(got)) and (
        pa.types.is_string(want) or pa.types.is_large_string(want)
    ):
        return True
    if pa.types.is_list(got) or pa.types.is_large_list(got):
        if pa.types.is_list(want) or pa.types.is_large_list(want):
            return _castable(got.value_type, want.value_type) or got.value_type == want.value_type
    return False


def write_json(data: Any, path: str | os.PathLike) -> Path:
    """Write JSON atomically, with sorted keys so identical inputs give identical bytes."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return Path(path)
