"""A stage's own errors (bad input, bad params, a missing artifact) are one line on stderr and exit
status 2, without a traceback; an unexpected error keeps its traceback."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import tiny_recbole
import yaml

from pipeline.errors import BadInput, run_stage

REPO = Path(__file__).resolve().parents[1]


def run_module(module: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def one_error_line(done: subprocess.CompletedProcess, stage: str) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith(f"{stage}: error: ")]
    assert len(lines) == 1, done.stderr
    return lines[0]


def ingest_params(root: Path, **changes) -> None:
    section = yaml.safe_load((REPO / "params.yaml").read_text())["ingest"]
    section["source"].update(path=str(root), name="tiny")
    section["split"].update(train_months=1, valid_months=1, test_months=1)
    section["topn_negatives"] = 5
    section.update(changes)
    (root / "params.yaml").write_text(yaml.safe_dump({"ingest": section}))


def test_a_bad_line_in_the_raw_file_is_one_line_naming_file_line_and_field(tmp_path):
    tiny_recbole.write_tiny_recbole(tmp_path, users=30, rows_per_user=12, items=40, days=89, seed=11)
    inter = tmp_path / "tiny.inter"
    lines = inter.read_text().splitlines()
    user, item, rating, _ = lines[36].split("\t")
    lines[36] = "\t".join([user, item, rating, "5"])  # file line 37: 1970, before ingest.earliest
    inter.write_text("\n".join(lines) + "\n")
    ingest_params(tmp_path, on_bad_line="error")
    line = one_error_line(run_module("stages.ingest", tmp_path), "stages.ingest")
    assert f"{inter}:37: bad_timestamp" in line and "'timestamp'" in line
    assert not (tmp_path / "data" / "ingest").exists()


def test_a_bad_params_value_is_one_line_naming_the_key(tmp_path):
    ingest_params(tmp_path, topn_negatives=0)
    line = one_error_line(run_module("stages.ingest", tmp_path), "stages.ingest")
    assert "ingest.topn_negatives" in line


def test_a_missing_artifact_is_one_line_naming_it(tmp_path):
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    line = one_error_line(run_module("stages.baselines", tmp_path), "stages.baselines")
    assert "data/ingest/interactions.parquet" in line


def test_an_unexpected_error_keeps_its_traceback():
    def broken() -> None:
        raise ZeroDivisionError("a bug, not the user's input")

    with pytest.raises(ZeroDivisionError):
        run_stage(broken)


def test_run_stage_names_the_stage_and_exits_2(capsys):
    def bad() -> None:
        raise BadInput("data/x.csv:3: field 'rating' is 'five'")

    with pytest.raises(SystemExit) as stopped:
        run_stage(bad)
    assert stopped.value.code == 2
    assert capsys.readouterr().err == f"\n{__name__}: error: data/x.csv:3: field 'rating' is 'five'\n"
