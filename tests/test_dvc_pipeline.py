"""End to end with DVC in a temporary git repo: ingest -> cf -> evaluate on a tiny RecBole
dataset; a changed CF param reruns only that model's cf and evaluate stages; push to a local
remote, clone, pull, and the clone is up to date."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tiny_recbole
import yaml

REPO = Path(__file__).resolve().parents[1]
MODELS = ("mf", "lightgcn", "sasrec")
TARGETS = ["evaluate"]  # only it and its upstream stages run (the LLM stages are dropped below)


def write_tiny_recbole(root: Path) -> None:
    """40 users x 15 rows over Jan-Apr 2021, 60 items, RecBole atomic files."""
    tiny_recbole.write_tiny_recbole(root, users=40, rows_per_user=15, items=60, days=119, seed=5)


def tiny_params(raw: Path) -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    ingest = params["ingest"]
    ingest["source"].update(path=str(raw), name="tiny")
    ingest["split"].update(train_months=2, valid_months=1, test_months=1)
    ingest["subsets"]["valid_small"]["user_fraction"] = 1.0
    ingest["subsets"]["test_small"]["user_fraction"] = 1.0
    ingest["subsets"]["test_tiny_rows"] = 10
    ingest["topn_negatives"] = 20
    params["cf"]["train"].update(max_epochs=2, patience=1)
    return params


def cf_only_pipeline() -> dict:
    """The project's dvc.yaml with evaluate reading only the CF models' predictions (the LLM
    stages are slow and not under test here)."""
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text())
    evaluate = pipeline["stages"]["evaluate"]
    kept = lambda path: not any(path.startswith(f"{d}/") for d in ("data/predictions", "data/ranking", "metrics")) or any(  # noqa: E731
        path.endswith(f"/{model}.parquet") or path.endswith(f"/{model}.json") for model in MODELS)
    evaluate["deps"] = [d for d in evaluate["deps"] if kept(d)]
    evaluate["metrics"] = [m for m in evaluate["metrics"] if kept(next(iter(m)) if isinstance(m, dict) else m)]
    evaluate["outs"] = [o for o in evaluate["outs"] if kept(next(iter(o)) if isinstance(o, dict) else o)]  # detail files
    return pipeline


class Project:
    def __init__(self, path: Path):
        self.path = path
        bin_dir = Path(sys.executable).parent
        self.env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                    "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
        self.env.pop("PYTHONPATH", None)  # stages must import the copied pipeline/

    def run(self, *args: str) -> str:
        """stdout of a command that must succeed."""
        done = subprocess.run(list(args), cwd=self.path, env=self.env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def dvc(self, *args: str) -> str:
        return self.run(sys.executable, "-m", "dvc", *args)

    def stale(self) -> set[str]:
        return set(json.loads(self.dvc("status", "--json", "--with-deps", *TARGETS)))

    def commit(self, message: str) -> None:
        self.run("git", "add", "-A")
        self.run("git", "commit", "-q", "-m", message)


@pytest.mark.slow
def test_repro_rerun_push_clone_pull(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    write_tiny_recbole(raw)
    project = Project(tmp_path / "project")
    project.path.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("pipeline", "stages"):
        shutil.copytree(REPO / name, project.path / name, ignore=ignore)
    with open(project.path / "pipeline/registry.py", "a") as registry:  # evaluate reads the CF models only
        registry.write('\nMODELS = tuple(entry for entry in MODELS if entry.family == "cf")\n')
    (project.path / "dvc.yaml").write_text(yaml.safe_dump(cf_only_pipeline(), sort_keys=False))
    (project.path / "params.yaml").write_text(yaml.safe_dump(tiny_params(raw), sort_keys=False))
    project.run("git", "init", "-q")
    project.dvc("init", "-q")
    project.commit("tiny project")

    project.dvc("repro", *TARGETS)
    for model in MODELS:
        metrics = json.loads((project.path / "metrics" / f"{model}.json").read_text())
        assert 0.0 <= metrics["auc"] <= 1.0 and metrics["n_rows"] > 0 and "topn_hr@1" in metrics
        assert (project.path / "data" / "cf" / model / "user_vectors.parquet").exists()
    shown = json.loads(project.dvc("metrics", "show", "--json"))
    assert all(f"metrics/{model}.json" in json.dumps(shown) for model in MODELS)
    assert project.stale() == set()
    project.commit("first run")

    params = yaml.safe_load((project.path / "params.yaml").read_text())
    params["cf"]["mf"]["lr"] = params["cf"]["mf"]["lr"] * 2
    (project.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert project.stale() == {"cf@mf"}  # evaluate follows once cf@mf rewrites its predictions
    log = project.dvc("repro", *TARGETS)
    ran = {line.split("'")[1] for line in log.splitlines() if line.startswith("Running stage")}
    assert ran == {"cf@mf", "evaluate"}
    assert project.stale() == set()
    project.commit("mf lr doubled")

    remote = tmp_path / "remote"
    project.dvc("remote", "add", "-d", "local", str(remote))
    project.commit("remote")
    project.dvc("push", "--with-deps", *TARGETS)
    clone = Project(tmp_path / "clone")
    project.run("git", "clone", "-q", str(project.path), str(clone.path))
    clone.dvc("pull", "--with-deps", *TARGETS)
    assert (clone.path / "data" / "predictions" / "sasrec.parquet").exists()
    assert clone.stale() == set()
    assert "up to date" in clone.dvc("status", *TARGETS).lower()
