"""Artifact writes: modes follow the umask (also for directories made by tempfile.mkdtemp, as the
rec and prepare_model stages make theirs), and leftovers of dead processes are removed while a
live writer's temporaries are left alone."""
from __future__ import annotations

import os
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
