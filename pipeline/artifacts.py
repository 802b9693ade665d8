"""Reading and writing the Parquet/JSON artifacts that cross stage boundaries.

Writes are atomic: a file is written under a temporary name next to it, then renamed; a directory
output is written whole into a temporary sibling, then swapped in (`atomic_directory`), so a
crashed run never leaves a half-written artifact or a mix of old and new files; files that belong
together (a stage's outputs and its metrics) are renamed together after all are written
(`atomic_paths`, `write_json_files`), so an error leaves every one as it was. Temporaries are
named `.<name>.<pid>.<random>.tmp`; the next write of the same artifact deletes those whose process
is gone (a run killed with SIGKILL cannot clean up after itself). Files and directories get the
mode the user's umask gives (0644 / 0755 under umask 022), never tempfile's owner-only 0600.
Reads validate the declared schema and name the file and field that do not match. Saved model
files (torch, safetensors, their JSON descriptions) are read through `load_torch`,
`load_safetensors` and `read_json_object`: a damaged or foreign one is an UnreadableArtifact
naming it, never a traceback from inside torch.
"""
from __future__ import annotations

import json
import os
import pickle
import re
import secrets
import shutil
import struct
import warnings
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from pipeline.errors import BadInput, MissingInput, ProjectError


class SchemaError(BadInput):
    """An artifact on disk does not have the columns or types its reader declares."""


class UnreadableArtifact(BadInput):
    """A saved model file that cannot be used: empty, cut off, not the format its name says, or
    holding something its reader does not expect. `path` lets a command name the stage that
    rebuilds it (the library does not know the pipeline)."""

    def __init__(self, path: str | os.PathLike, why: str):
        super().__init__(f"{path}: {why}")
        self.path = Path(path)


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _new_temporary(path: Path, directory: bool) -> Path:
    """Create an empty temporary file or directory next to `path`. Created with mode 0666/0777 so
    the kernel applies the umask (tempfile.mkstemp/mkdtemp would make it owner-only)."""
    while True:
        tmp = _temporary_name(path)
        try:
            if directory:
                os.mkdir(tmp, 0o777)
            else:
                os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:
            continue


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporaries (and moved-aside old copies) of `path` left by processes that no
    longer run; those of live processes (another writer) are left alone. Returns what was removed."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.(?:[0-9a-f]+\.tmp|old)")
    removed = []
    for sibling in path.parent.iterdir():
        match = pattern.fullmatch(sibling.name)
        if match is None or _process_alive(int(match.group(1))):
            continue
        if sibling.is_dir() and not sibling.is_symlink():
            shutil.rmtree(sibling, ignore_errors=True)
        else:
            sibling.unlink(missing_ok=True)
        removed.append(sibling)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    with _naming_target(path):
        tmp = _new_temporary(path, directory=False)
        try:
            yield tmp
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()


@contextmanager
def atomic_paths(*paths: str | os.PathLike) -> Iterator[list[Path]]:
    """`atomic_path` for files that belong together (a model's metrics and their detail, a
    stage's outputs and its metrics): a temporary for each, all renamed onto `paths` only when the
    whole block succeeds, one rename after another with nothing between them that can fail but a
    rename. An error in the block leaves every file as it was: none is half-updated."""
    with ExitStack() as stack:
        yield [stack.enter_context(atomic_path(path)) for path in paths]


@contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory next to `path`; when the block succeeds it replaces
    `path` as a whole (`replace_directory`), else it is deleted and `path` stays as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    with _naming_target(path):
        tmp = _new_temporary(path, directory=True)
        try:
            yield tmp
            replace_directory(tmp, path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)


@contextmanager
def _naming_target(path: Path) -> Iterator[None]:
    """An OSError about `path`'s temporary (it cannot be created, the disk is full, the rename is
    refused) names `path`: the file the user asked for, not a name they never gave."""
    try:
        yield
    except OSError as err:
        if not any(_is_temporary_of(name, path) for name in (err.filename, err.filename2)):
            raise
        named = type(err)(f"{path}: cannot be written: {err.strerror or err}")
        named.errno = err.errno
        raise named from None


def _is_temporary_of(name, path: Path) -> bool:
    if not isinstance(name, (str, os.PathLike)):
        return False
    name = Path(name)
    return name.parent == path.parent and name.name.startswith(f".{path.name}.")


def replace_directory(tmp: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Put the fully written directory `tmp` at `dest`: an old `dest` is moved aside first and
    deleted only after the rename. A crash between the two renames leaves no `dest` (the old copy
    sits aside until the next write removes it), never a half-written or mixed one. `tmp` gets the
    umask's directory mode (a tempfile.mkdtemp directory is owner-only), and so does everything
    inside it: some writers (safetensors, used by peft's save_pretrained) create owner-only files."""
    tmp, dest = Path(tmp), Path(dest)
    remove_stale_temporaries(dest)
    mask = _umask()
    os.chmod(tmp, 0o777 & ~mask)
    for root, dirs, files in os.walk(tmp):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o777 & ~mask)
        for name in files:
            os.chmod(os.path.join(root, name), 0o666 & ~mask)
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.{os.getpid()}.old")
        os.replace(dest, old)
    os.replace(tmp, dest)
    if old is not None:
        shutil.rmtree(old)
    return dest


def _umask() -> int:
    mask = os.umask(0o077)  # the only way to read it; restrictive for the instant it is in force
    os.umask(mask)
    return mask


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


def write_bytes(data: bytes, path: str | os.PathLike) -> Path:
    """Write `data` atomically (e.g. a checkpoint serialised in memory)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise MissingInput(f"{path}: artifact not found (has the stage that writes it run?)")
    return path


def read_table(path: str | os.PathLike, schema: pa.Schema | None = None) -> pa.Table:
    """Read a Parquet artifact; with `schema`, check its fields and cast to the declared types."""
    path = _existing(path)
    table = pq.read_table(path)
    if schema is None:
        return table
    validate_schema(table.schema, schema, str(path))
    table = table.select(schema.names).cast(schema)
    _check_finite(table, schema, str(path))
    return table


def _check_finite(table: pa.Table, schema: pa.Schema, where: str) -> None:
    """The schema's finite columns (schemas.FINITE_COLUMNS: scores, CF vectors) hold no NaN or
    infinity; else the named one-line error of schemas.require_finite."""
    import pyarrow.compute as pc

    from pipeline.schemas import finite_columns, require_finite

    for column, ids in finite_columns(schema):
        values = table.column(column)
        if pa.types.is_list(values.type):
            values = pc.list_flatten(values)
        if len(values) and not pc.all(pc.fill_null(pc.is_finite(values), False)).as_py():  # null = NaN from pandas
            require_finite(table.select([column, *ids]).to_pandas(), column, where, ids)


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
        tmp.write_text(json_text(data))
    return Path(path)


def write_json_files(files: dict[str | os.PathLike, Any]) -> list[Path]:
    """write_json of several files at once (path -> data), through `atomic_paths`: all or none."""
    with atomic_paths(*files) as temporaries:
        for tmp, data in zip(temporaries, files.values()):
            tmp.write_text(json_text(data))
    return [Path(path) for path in files]


def json_text(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


# What torch.load raised on damaged files, fuzzed (empty, cut off, random bytes, bytes flipped in a
# real checkpoint, pickles of other objects): its zip reader, unpickler and weights-only guard fail
# with any of these. OSError (permission, a directory) already names the file.
_TORCH_LOAD_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, LookupError, TypeError,
                      AttributeError, struct.error)


def _short(err: Exception) -> str:
    """One line of an exception: torch's messages run to paragraphs."""
    lines = str(err).strip().splitlines()
    text = lines[0] if lines else ""
    text = text if len(text) <= 120 else text[:117] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def load_torch(path: str | os.PathLike) -> Any:
    """A torch.save'd artifact on the CPU, tensors and plain containers only (weights_only: a
    foreign pickle cannot run code). MissingInput when absent; UnreadableArtifact when damaged."""
    import torch  # here, not at the top: the Parquet/JSON readers above must not import torch

    path = _existing(path)
    if path.stat().st_size == 0:
        raise UnreadableArtifact(path, "empty file, not a torch checkpoint")
    try:
        with warnings.catch_warnings():  # said of foreign pickles, just before they are refused
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except _TORCH_LOAD_ERRORS as err:
        raise UnreadableArtifact(path, f"not a readable torch checkpoint: {_torch_failure(err)}") from None


def _torch_failure(err: Exception) -> str:
    """What torch.load's error means, in a few words (its own messages run to paragraphs)."""
    if isinstance(err, pickle.UnpicklingError) and "Weights only load failed" in str(err):
        return "it pickles objects other than tensors and plain containers (refused unread: weights_only)"
    if isinstance(err, RuntimeError) and "zip archive" in str(err):
        return "cut off or damaged (its zip archive cannot be read)"
    return f"cut off, damaged or another kind of file ({_short(err)})"


def load_safetensors(path: str | os.PathLike) -> dict:
    """name -> CPU tensor of a safetensors file (a saved LoRA adapter). MissingInput when absent;
    UnreadableArtifact when damaged."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = _existing(path)
    try:
        return load_file(str(path))
    except SafetensorError as err:
        raise UnreadableArtifact(path, f"not a readable safetensors file ({_short(err)})") from None


def read_json_object(path: str | os.PathLike) -> dict:
    """A JSON object saved beside a model (model.json, adapter_config.json, gate.json)."""
    path = _existing(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UnreadableArtifact(path, f"not JSON ({_short(err)})") from None
    if not isinstance(data, dict):
        raise UnreadableArtifact(path, f"holds a JSON {type(data).__name__}, not an object")
    return data


@contextmanager
def expect_content(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Around the unpacking of a loaded artifact (its keys, a load_state_dict): a file that loads
    but holds something else (a key missing, tensors of other shapes) is an UnreadableArtifact
    saying it is not `what`."""
    try:
        yield
    except ProjectError:  # already says what is wrong, and where
        raise
    except (LookupError, TypeError, ValueError, RuntimeError, AttributeError) as err:
        raise UnreadableArtifact(path, f"not {what} ({_short(err)})") from None
