"""Params profiles (pipeline/profiles.py, profiles/*.yaml): every key a profile sets exists in
params.yaml, the paper-scale settings validate against the stages' own params models, and in a
copy of the project `dvc repro --dry` and `dvc exp run --dry` walk every stage of the graph."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.ingest.config import IngestParams
from pipeline.llm.config import LLMConfig
from pipeline.profiles import flatten, profile_sets, set_arguments
from pipeline.rec.params import RecParams
from pipeline.explain.params import ExplainParams
from stages.keywords import KeywordParams
from stages.prepare_model import PrepareModelParams
from stages.traces import TraceParams

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "profiles"
DATASETS = ["ml1m.yaml", "amazon-book.yaml", "yelp.yaml"]
SECTIONS = {"ingest": IngestParams, "prepare_model": PrepareModelParams, "llm": LLMConfig,
            "keywords": KeywordParams, "traces": TraceParams, "rec": RecParams, "explain": ExplainParams}


def _params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def _apply(params: dict, sets: dict) -> dict:
    for key, value in sets.items():
        *parents, leaf = key.split(".")
        node = params
        for part in parents:
            node = node[part]
        node[leaf] = value
    return params


@pytest.mark.parametrize("dataset", DATASETS)
def test_paper_profiles_set_known_keys_and_validate(dataset):
    profiles = [PROFILES / "paper-gpu.yaml", PROFILES / dataset]
    sets = profile_sets(_params(), profiles)
    assert sets["rec.backbone"] == sets["prepare_model.output"]  # the recommender trains the prepared 8B copy
    assert sets["llm.backend"] == "openai"
    for stage in ("rec.stage1", "rec.stage2"):  # GPU-sized steps: packs per micro-batch x accumulation
        assert sets[f"{stage}.batch_size"] * sets[f"{stage}.grad_accum"] >= 8
    params = _apply(_params(), sets)
    for name, model in SECTIONS.items():
        model.model_validate(params[name])  # raises on a wrong type, name or value
    args = set_arguments(sets)
    assert args[0::2] == ["-S"] * len(sets) and f'ingest.source.format="{dataset.split("-")[0].removesuffix(".yaml")}"' in args


def test_a_profile_key_params_yaml_lacks_is_an_error_naming_it(tmp_path):
    bad = tmp_path / "typo.yaml"
    bad.write_text("rec:\n  stage1:\n    batchsize: 16\n")
    with pytest.raises(KeyError, match=r"typo.yaml: 'rec.stage1.batchsize' is not a key of params.yaml"):
        profile_sets(_params(), [bad])
    assert flatten({"a": {"b": 1, "c": [2, 3]}, "d": None}) == {"a.b": 1, "a.c": [2, 3], "d": None}


def _project_copy(root: Path) -> Path:
    """The repository's files (tracked and new, not ignored) in a fresh git repo with one commit."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "copy"]):
        subprocess.run(git + args, cwd=root, check=True, capture_output=True)
    return root


def _dvc(root: Path, *args: str) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}  # exp run may commit
    result = subprocess.run([str(Path(sys.executable).parent / "dvc"), *args], cwd=root, capture_output=True,
                            text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_dry_runs_walk_every_stage_under_the_ml1m_paper_profile(tmp_path):
    root = _project_copy(tmp_path / "project")
    stages = [line.split()[0] for line in _dvc(root, "stage", "list").splitlines() if line.strip()]
    assert {"ingest", "prepare_model", "keywords", "traces", "collm", "thinkrec", "evaluate"} <= set(stages)
    sets = profile_sets(_params(), [PROFILES / "paper-gpu.yaml", PROFILES / "ml1m.yaml"])
    # The documented path: DVC applies the -S sets itself (it rejects a key params.yaml lacks).
    # --force: without it DVC's run-cache check hashes the deps of the first stage downstream of a
    # not-yet-run one and stops on the missing file (DVC issue 9818), so a fresh checkout's dry run
    # never reaches the later stages.
    shown = _dvc(root, "exp", "run", "--dry", "--force", *set_arguments(sets))
    assert [s for s in stages if f"Running stage '{s}'" not in shown] == []
    # The same with the profile written into params.yaml: every stage, profile paths interpolated.
    (root / "params.yaml").write_text(yaml.safe_dump(_apply(_params(), sets), sort_keys=False))
    shown = _dvc(root, "repro", "--dry", "--force")
    assert [s for s in stages if f"Running stage '{s}'" not in shown] == []
    status = _dvc(root, "status", "thinkrec")  # its deps as interpolated from the profiled params.yaml
    assert "data/models/llama-3-8b-instruct" in status and "data/cf/sasrec" in status
    assert "smollm2" not in status
