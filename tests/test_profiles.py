"""Params profiles (pipeline/profiles.py, profiles/*.yaml): every key a profile sets exists in
params.yaml, the paper-scale settings validate against the stages' own params models, and in a
copy of the project `dvc repro --dry` and `dvc exp run --dry` walk every stage of the graph."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.hard_scores import HardScoresParams
from pipeline.ingest.config import IngestParams
from pipeline.llm.config import LLMConfig
from pipeline.profiles import apply_sets, flatten, profile_sets, set_arguments
from pipeline.rec.params import RecParams
from pipeline.explain.params import ExplainParams
from stages.keywords import KeywordParams
from stages.prepare_model import PrepareModelParams
from stages.traces import TraceParams

from project_copy import project_copy, run_dvc

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "profiles"
DATASETS = ["ml1m.yaml", "amazon-book.yaml", "yelp.yaml"]
SECTIONS = {"ingest": IngestParams, "prepare_model": PrepareModelParams, "llm": LLMConfig,
            "keywords": KeywordParams, "traces": TraceParams, "hard_scores": HardScoresParams, "rec": RecParams,
            "explain": ExplainParams}


def _params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.mark.parametrize("dataset", DATASETS)
def test_the_reference_profile_sets_known_keys_and_validates_on_every_dataset(dataset):
    profiles = [PROFILES / "thinkrec-reference.yaml", PROFILES / dataset]
    sets = profile_sets(_params(), profiles)
    assert sets["rec.backbone"] == sets["prepare_model.output"]  # the recommender trains the prepared 8B copy
    assert sets["llm.backend"] == "openai"
    for stage in ("rec.stage1", "rec.stage2"):  # the reference's runner: 50 epochs of 800 steps at batch 1
        assert (sets[f"{stage}.epochs"], sets[f"{stage}.steps_per_epoch"], sets[f"{stage}.batch_size"]) == (50, 800, 1)
    params = apply_sets(_params(), sets)
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


@pytest.mark.slow
def test_dry_runs_walk_every_stage_under_the_ml1m_reference_profile(tmp_path):
    root = project_copy(tmp_path / "project")
    profiles = [PROFILES / "thinkrec-reference.yaml", PROFILES / "ml1m.yaml"]
    # the documented first step: dvc.yaml written for the profiles (they add the hard_scores stage)
    subprocess.run([sys.executable, "-m", "stages.dvc_yaml", "--write", "--profiles", *map(str, profiles)],
                   cwd=root, check=True)
    stages = [line.split()[0] for line in run_dvc(root, "stage", "list").splitlines() if line.strip()]
    assert {"ingest", "prepare_model", "keywords", "hard_scores", "traces", "collm", "thinkrec", "evaluate"} <= set(stages)
    sets = profile_sets(_params(), profiles)
    # The documented path: DVC applies the -S sets itself (it rejects a key params.yaml lacks).
    # --force: without it DVC's run-cache check hashes the deps of the first stage downstream of a
    # not-yet-run one and stops on the missing file (DVC issue 9818), so a fresh checkout's dry run
    # never reaches the later stages.
    shown = run_dvc(root, "exp", "run", "--dry", "--force", *set_arguments(sets))
    assert [s for s in stages if f"Running stage '{s}'" not in shown] == []
    # The same with the profile written into params.yaml: every stage, profile paths interpolated.
    (root / "params.yaml").write_text(yaml.safe_dump(apply_sets(_params(), sets), sort_keys=False))
    shown = run_dvc(root, "repro", "--dry", "--force")
    assert [s for s in stages if f"Running stage '{s}'" not in shown] == []
    status = run_dvc(root, "status", "thinkrec")  # its deps as interpolated from the profiled params.yaml
    assert "data/models/llama-3-8b-instruct" in status and "data/cf_selected" in status  # cf_select's choice:
    assert yaml.safe_load((root / "params.yaml").read_text())["cf"]["model"] == "mf"  # the reference feeds MF
    assert "smollm2" not in status


def test_set_arguments_speak_hydra_and_add_open_map_entries():
    """DVC parses -S with Hydra: map keys bare, strings quoted (so "yes" stays a string), and an
    entry of an open map (params.yaml's `{}`) added with ++ (Hydra will not merge a new key)."""
    args = set_arguments({"rec.answer_logit": "yes", "rec.prompt.cf_slots": {"collm": ["user", "target"]},
                          "traces.max_rounds": None, "experts.slots": [0, 1]})
    assert args == ["-S", 'rec.answer_logit="yes"', "-S", '++rec.prompt.cf_slots.collm=["user","target"]',
                    "-S", "traces.max_rounds=null", "-S", "experts.slots=[0,1]"]
