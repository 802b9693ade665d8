"""Every recipe profile runs end to end before anyone pays for a GPU: in a copy of the project,
`dvc repro` of the whole pipeline under the profile (with its dataset profile) and the dry-run
overlay (profiles/dry-run.yaml: sizes only), on a small dataset in the dataset's own file format,
a tiny random Llama as the backbone and a scripted teacher behind the OpenAI-compatible client.

The harness sets only where things live: the raw files (ingest.source.path), the backbone
(prepare_model.source), the teacher's address (llm.openai.base_url) and the device (the recipes
name CUDA). Everything else is the recipe's own value, so a size that does not fit its split, a
trace count beyond the rows, an expert slot beyond the clusters or an option that no stage can
run fails here, in minutes, with the stage's one-line error."""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from llm_fake_server import FakeChatServer
from ml1m_fixture import write_ml1m
from pipeline.profiles import profile_sets
from project_copy import project_copy, run_dvc
from rec_tiny import write_tiny_model

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "profiles"
# (recipe profile, dataset profile, dataset writer); every recipe profile in profiles/ is listed here
RECIPES = [("thinkrec-reference.yaml", "ml1m.yaml", write_ml1m)]


def scripted_teacher(prompt: str) -> str:
    """Keywords for a keywords question, else a verdict with a short reason (verified for liked rows)."""
    if "keyword" in prompt.lower():
        return "drama, friendship, classic film"
    return "Yes. The user liked several films of this kind before, so this one fits their taste."


def apply(params: dict, sets: dict) -> dict:
    for key, value in sets.items():
        *parents, leaf = key.split(".")
        node = params
        for part in parents:
            node = node[part]
        node[leaf] = value
    return params


@pytest.mark.slow  # a whole `dvc repro` of about 25 stages on tiny inputs: a few minutes
@pytest.mark.parametrize(("recipe", "dataset", "write_dataset"), RECIPES, ids=[r[0] for r in RECIPES])
def test_the_recipe_runs_end_to_end_under_the_dry_run_overlay(tmp_path, recipe, dataset, write_dataset):
    root = project_copy(tmp_path / "project")
    shutil.rmtree(root / "metrics")  # the committed run's files: every metrics file read below is this run's
    raw = write_dataset(tmp_path / "raw")
    # as many layers as the recipes' experts train (experts.train.upper_layers: 8), else tiny
    model = write_tiny_model(tmp_path / "tiny-llama", layers=8, max_positions=4096)
    params = yaml.safe_load((root / "params.yaml").read_text())
    sets = profile_sets(params, [PROFILES / recipe, PROFILES / dataset, PROFILES / "dry-run.yaml"])
    with FakeChatServer(respond=scripted_teacher) as teacher:
        sets.update({"ingest.source.path": str(raw), "prepare_model.source": str(model),
                     "llm.openai.base_url": teacher.base_url, "rec.device": "cpu"})
        (root / "params.yaml").write_text(yaml.safe_dump(apply(params, sets), sort_keys=False))
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # stages call `python`
        shown = run_dvc(root, "repro", timeout=1800,
                        env={"PATH": path, "VLLM_API_KEY": "dry-run", "OPENAI_API_KEY": "dry-run"})
    stages = [line.split()[0] for line in run_dvc(root, "stage", "list").splitlines() if line.strip()]
    assert [s for s in stages if f"Running stage '{s}'" not in shown] == []
    assert sum(teacher.answered.values()) > 0  # the teacher stages asked the served teacher
    metrics = json.loads((root / "metrics/thinkrec.json").read_text())
    assert metrics["n_rows"] > 0 and 0.0 <= metrics["auc"] <= 1.0  # evaluate measured ThinkRec on its rows
    explanations = json.loads((root / "metrics/explanations.json").read_text())
    assert set(explanations) == set(params["explain"]["models"])
