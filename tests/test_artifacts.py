"""Artifact writes: modes follow the umask (also for directories made by tempfile.mkdtemp, as the
rec and prepare_model stages make theirs), leftovers of dead processes are removed while a live
writer's temporaries are left alone, and a failed write names the target, not its temporary.
Saved model files (torch, safetensors, JSON) that are damaged or foreign are errors naming them."""
from __future__ import annotations

import os
import pickle
import random
import subprocess
import tempfile

import pyarrow as pa
import pytest

from pipeline.artifacts import remove_stale_temporaries, replace_directory, write_json, write_table


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_files_and_swapped_directories_get_the_umask_mode(tmp_path, umask_027):
    write_table(pa.table({"x": [1, 2]}), tmp_path / "t.parquet")
    write_json({"a": 1}, tmp_path / "a.json")
    staging = tempfile.mkdtemp(dir=tmp_path)  # owner-only 0700
    write_json({"b": 2}, os.path.join(staging, "b.json"))
    os.makedirs(os.path.join(staging, "adapter"), mode=0o700)
    from safetensors.torch import save_file  # peft's adapter writer: it creates owner-only files
    import torch

    save_file({"w": torch.zeros(2)}, os.path.join(staging, "adapter", "weights.safetensors"))
    replace_directory(staging, tmp_path / "model")
    modes = {path.name: path.stat().st_mode & 0o777 for path in tmp_path.rglob("*")}
    assert modes == {"t.parquet": 0o640, "a.json": 0o640, "model": 0o750, "b.json": 0o640, "adapter": 0o750,
                     "weights.safetensors": 0o640}


def test_only_dead_processes_leftovers_are_removed(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()  # reaped: its pid names no process
    target = tmp_path / "out.parquet"
    stale = [tmp_path / f".out.parquet.{dead.pid}.0badc0de.tmp", tmp_path / f".out.parquet.{dead.pid}.old"]
    live = tmp_path / f".out.parquet.{os.getppid()}.0badc0de.tmp"  # the test runner's parent is alive
    unrelated = [tmp_path / f".other.parquet.{dead.pid}.0badc0de.tmp", tmp_path / ".gitignore"]
    stale[0].write_text("half a file")
    stale[1].mkdir()
    for path in (live, *unrelated):
        path.write_text("")
    assert sorted(remove_stale_temporaries(target)) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (live, *unrelated))
    write_table(pa.table({"x": [1]}), target)  # writing the artifact does the same
    assert live.exists() and target.exists()


class Foreign:
    """Unpickled without weights_only, this creates the directory `marker`."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _saved_model_files(tmp_path) -> dict[str, bytes]:
    import torch
    from safetensors.torch import save_file

    torch.save({"config": {"cf_dim": 2}, "state": {"w": torch.arange(4.0)}}, tmp_path / "good.pt")
    save_file({"a.lora_A.weight": torch.ones(2, 3)}, tmp_path / "good.safetensors")
    return {"pt": (tmp_path / "good.pt").read_bytes(), "safetensors": (tmp_path / "good.safetensors").read_bytes()}


DAMAGED = {  # loader -> name -> content built from the good files
    "load_torch": {"empty": lambda good, marker: b"", "cut in half": lambda good, marker: good["pt"][: len(good["pt"]) // 2],
                   "random bytes": lambda good, marker: random.Random(0).randbytes(5000),
                   "text": lambda good, marker: b"projector weights\n",
                   "foreign pickle": lambda good, marker: pickle.dumps(Foreign(marker)),
                   "a safetensors file": lambda good, marker: good["safetensors"]},
    "load_safetensors": {"empty": lambda good, marker: b"", "cut off": lambda good, marker: good["safetensors"][:-5],
                         "random bytes": lambda good, marker: random.Random(1).randbytes(5000),
                         "a torch file": lambda good, marker: good["pt"]},
    "read_json_object": {"cut off": lambda good, marker: b'{"has_projector": tr',
                         "a list": lambda good, marker: b"[1, 2]", "binary": lambda good, marker: good["pt"]},
}


@pytest.mark.parametrize("loader, damage", [(loader, name) for loader, cases in DAMAGED.items() for name in cases])
def test_a_damaged_saved_model_file_is_an_error_naming_it(tmp_path, loader, damage):
    from pipeline import artifacts
    from pipeline.errors import BadInput

    marker = tmp_path / "ran"
    path = tmp_path / "model" / "file"
    path.parent.mkdir()
    path.write_bytes(DAMAGED[loader][damage](_saved_model_files(tmp_path), str(marker)))
    with pytest.raises(BadInput) as raised:
        getattr(artifacts, loader)(path)
    assert str(raised.value).startswith(f"{path}: ") and "\n" not in str(raised.value)
    assert raised.value.path == path  # the command adds the stage that rebuilds it
    assert not marker.exists()  # a foreign pickle is refused (weights_only), never run


def test_saved_model_files_load_as_saved(tmp_path):
    import torch

    from pipeline.artifacts import load_safetensors, load_torch, read_json_object

    _saved_model_files(tmp_path)
    saved = load_torch(tmp_path / "good.pt")
    assert saved["config"] == {"cf_dim": 2} and saved["state"]["w"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert torch.equal(load_safetensors(tmp_path / "good.safetensors")["a.lora_A.weight"], torch.ones(2, 3))
    write_json({"has_projector": True}, tmp_path / "model.json")
    assert read_json_object(tmp_path / "model.json") == {"has_projector": True}


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc, where no file can be created")
def test_a_write_that_fails_names_the_target_not_its_temporary(tmp_path):
    from pipeline.artifacts import atomic_path

    with pytest.raises(OSError) as raised:
        write_json({"a": 1}, "/proc/thinkrec.json")
    assert str(raised.value).startswith("/proc/thinkrec.json: cannot be written: ") and ".tmp" not in str(raised.value)
    assert raised.value.errno is not None
    # an error about another file, raised while writing the target, is left as it was
    with pytest.raises(OSError) as raised, atomic_path(tmp_path / "out.json") as tmp:
        open("/proc/other.json", "w")
    assert raised.value.filename == "/proc/other.json"
    assert not tmp.exists() and not (tmp_path / "out.json").exists()
