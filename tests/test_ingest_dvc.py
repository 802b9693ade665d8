"""Raw data is a DVC dependency of ingest: in a temporary git + DVC repo, a changed raw file
(a directory outside the repo) makes `dvc status` report ingest, and so does a changed pin of the
embedded default."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import tiny_recbole
import yaml

REPO = Path(__file__).resolve().parents[1]
PIN = "pipeline/ingest/ml-100k.embedded.json"


def dvc(project: Path, *args: str) -> str:
    """stdout of a dvc command that must succeed."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1"}
    env.pop("PYTHONPATH", None)  # stages must import the copied pipeline/
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=project, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, f"dvc {' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def set_source(project: Path, **source) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["ingest"]["source"].update(source)
    params["ingest"]["split"].update(train_months=2, valid_months=1, test_months=1)
    (project / "params.yaml").write_text(yaml.safe_dump({"ingest": params["ingest"]}, sort_keys=False))


def test_changed_raw_file_or_pin_makes_ingest_stale(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    tiny_recbole.write_tiny_recbole(raw, users=40, rows_per_user=15, items=60, days=119, seed=5)
    project = tmp_path / "project"
    for name in ("pipeline", "stages"):
        shutil.copytree(REPO / name, project / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    (project / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"ingest": stages["ingest"]}}))
    set_source(project, path=str(raw), name="tiny")
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    dvc(project, "init", "-q")
    dvc(project, "repro", "ingest")
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert str(raw) in [dep["path"] for dep in lock["stages"]["ingest"]["deps"]]
    assert json.loads(dvc(project, "status", "--json", "ingest")) == {}

    with open(raw / "tiny.inter", "a") as handle:
        handle.write("999\t1\t5\t1612137600\n")  # one more rating, 2021-02-01
    assert json.loads(dvc(project, "status", "--json", "ingest")) == {"ingest": [{"changed deps": {str(raw): "modified"}}]}
    dvc(project, "repro", "ingest")
    assert json.loads((project / "data/ingest/card.json").read_text())["totals"]["rows"] == 40 * 15 + 1

    set_source(project, path=PIN, name="ml-100k")  # the embedded default
    dvc(project, "repro", "ingest")
    assert json.loads(dvc(project, "status", "--json", "ingest")) == {}
    pin = project / PIN
    pin.write_text(pin.read_text().replace('"1.2.1"', '"1.2.2"'))  # another release's data
    changed = json.loads(dvc(project, "status", "--json", "ingest"))["ingest"][0]["changed deps"]
    assert changed[PIN] == "modified"
