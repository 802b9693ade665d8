"""Every recipe profile runs end to end before anyone pays for a GPU: in a copy of the project,
`dvc repro` of the whole pipeline under the profile (with its dataset profile) and the dry-run
overlay (profiles/dry-run.yaml: sizes only), on a small dataset in the dataset's own file format,
a tiny random Llama as the backbone and a scripted teacher behind the OpenAI-compatible client.

The harness sets only where things live: the raw files (ingest.source.path; the fixture is not the
dataset, so the dataset profile's ingest.expected_rows counts are cleared), the backbone
(prepare_model.source), the teacher's address (llm.openai.base_url; a recipe left on params.yaml's
local teacher is pointed at the scripted one too: llm.backend openai, a served name) and the device
(the recipes name CUDA). Everything else is the recipe's own value, so a size that does not fit its
split, a trace count beyond the rows, an expert slot beyond the clusters or an option that no stage can
run fails here, in minutes, with the stage's one-line error."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llm_fake_server import FakeChatServer
from ml1m_fixture import write_ml1m
from pipeline.profiles import apply_sets, flatten, profile_sets
from pipeline.provenance import without_stamp
from project_copy import project_copy, run_dvc
from raw_fixtures import write_amazon2014_beauty, write_amazon_book, write_yelp
from rec_tiny import write_tiny_model

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "profiles"
# (recipe profile, dataset profile or None, dataset writer); every profile in profiles/ but the
# overlay is listed here (test_every_profile_has_a_dry_run). profiles/rdrec-amazon2014.yaml is a
# recipe and its dataset in one, laid over params.yaml alone (its header: the `dvc exp run -S`
# line of docs/rdrec.md), so it runs with no dataset profile.
RECIPES = [
    ("thinkrec-reference.yaml", "ml1m.yaml", write_ml1m),
    ("thinkrec-reference.yaml", "amazon-book.yaml", write_amazon_book),
    ("thinkrec-reference.yaml", "yelp.yaml", write_yelp),
    ("rdrec-amazon2014.yaml", None, write_amazon2014_beauty),
]
OVERLAY = "dry-run.yaml"


def recipe_id(recipe: str, dataset: str | None) -> str:
    return "+".join(Path(name).stem for name in (recipe, dataset) if name)


# the overlay's epoch keys shrink an epoch schedule; a recipe that trains in one pass keeps it
EPOCH_KEYS = ("epochs", "steps_per_epoch")


def overlay_sets(params: dict, recipe_sets: dict) -> dict:
    """The dry-run overlay's sets for a recipe: its sizes, but its epoch keys only under a section
    the recipe trains in epochs (a recipe that leaves e.g. experts.train.epochs null trains one
    pass, and the overlay changes sizes only, not how a stage trains)."""
    shrunk = profile_sets(params, [PROFILES / OVERLAY])
    flat = {**flatten(params), **recipe_sets}
    return {key: value for key, value in shrunk.items()
            if key.rsplit(".", 1)[-1] not in EPOCH_KEYS or flat[key.rsplit(".", 1)[0] + ".epochs"] is not None}


def scripted_teacher(prompt: str) -> str:
    """Keywords for a keywords question, else a verdict with a short reason (verified for liked rows)."""
    if "keyword" in prompt.lower():
        return "drama, friendship, classic film"
    return "Yes. The user liked several films of this kind before, so this one fits their taste."


@pytest.mark.slow  # a whole `dvc repro` of about 25 stages on tiny inputs: 5-10 minutes each
@pytest.mark.timeout(2400)  # above the suite's 900 s: RDRec's profile took 610 s on a busy 2-core machine
@pytest.mark.parametrize(("recipe", "dataset", "write_dataset"), RECIPES, ids=[recipe_id(r[0], r[1]) for r in RECIPES])
def test_the_recipe_runs_end_to_end_under_the_dry_run_overlay(tmp_path, recipe, dataset, write_dataset):
    root = project_copy(tmp_path / "project")
    shutil.rmtree(root / "metrics")  # the committed run's files: every metrics file read below is this run's
    raw = write_dataset(tmp_path / "raw")
    # as many layers as the recipes' experts train (experts.train.upper_layers: 8), else tiny
    model = write_tiny_model(tmp_path / "tiny-llama", layers=8, max_positions=4096)
    params = yaml.safe_load((root / "params.yaml").read_text())
    recipe_sets = profile_sets(params, [PROFILES / name for name in [recipe] + ([dataset] if dataset else [])])
    sets = {**recipe_sets, **overlay_sets(params, recipe_sets)}
    with FakeChatServer(respond=scripted_teacher) as teacher:
        sets.update({"ingest.source.path": str(raw), "prepare_model.source": str(model),
                     "llm.openai.base_url": teacher.base_url, "rec.device": "cpu"})
        # a few hundred fixture rows, not the published split: its row counts are not checked here
        sets.update({key: None for key in sets if key.startswith("ingest.expected_rows.")})
        if sets.get("llm.backend", params["llm"]["backend"]) != "openai":
            # a recipe on params.yaml's local teacher (rdrec-amazon2014): the tiny random model
            # would answer noise, so whether any trace verifies would be chance; the scripted one
            sets.update({"llm.backend": "openai", "llm.model": "scripted-teacher"})
        (root / "params.yaml").write_text(yaml.safe_dump(apply_sets(params, sets), sort_keys=False))
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # stages call `python`
        # dvc.yaml as the runbook writes it for the profiles (a stage the recipe adds: hard_scores)
        subprocess.run([sys.executable, "-m", "stages.dvc_yaml", "--write"], cwd=root, check=True)
        shown = run_dvc(root, "repro", timeout=1800,
                        env={"PATH": path, "VLLM_API_KEY": "dry-run", "OPENAI_API_KEY": "dry-run"})
    stages = [line.split()[0] for line in run_dvc(root, "stage", "list").splitlines() if line.strip()]
    assert [s for s in stages if f"Running stage '{s}'" not in shown] == []
    assert sum(teacher.answered.values()) > 0  # the teacher stages asked the served teacher
    metrics = json.loads((root / "metrics/thinkrec.json").read_text())
    assert metrics["n_rows"] > 0 and 0.0 <= metrics["auc"] <= 1.0  # evaluate measured ThinkRec on its rows
    explanations = without_stamp(json.loads((root / "metrics/explanations.json").read_text()))
    assert set(explanations) == set(params["explain"]["models"])
    assert metrics["ingest"] == json.loads((root / "data/ingest/card.json").read_text())["fingerprint"]
    hard = params["hard_scores"]["model"]
    if hard:  # the recipe's hard rows are that LLM's train-split mistakes, read from the file its stage wrote
        selection = json.loads((root / "metrics/traces.json").read_text())["selection"]
        scored = json.loads((root / "metrics/hard_scores.json").read_text())
        assert (selection["hard_scores"], scored["model"]) == (params["traces"]["hard_scores"], hard)
        assert scored["rows"] == selection["train_rows"] and 0 < selection["selected"] <= scored["wrong"]


def test_every_profile_has_a_dry_run():
    """A profile added to profiles/ without a RECIPES entry fails here (the fast suite), not on a GPU."""
    listed = {name for recipe, dataset, _ in RECIPES for name in (recipe, dataset) if name}
    profiles = {path.name for path in PROFILES.glob("*.yaml")} - {OVERLAY}
    assert profiles - listed == set()
    assert listed - profiles == set()  # and every listed one exists


def test_the_overlay_shrinks_epochs_only_where_the_recipe_trains_in_epochs():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for recipe, dataset, _ in RECIPES:
        recipe_sets = profile_sets(params, [PROFILES / name for name in (recipe, dataset) if name])
        shrunk = overlay_sets(params, recipe_sets)
        for section in ("rec.stage1", "rec.stage2", "experts.train"):
            in_epochs = {**flatten(params), **recipe_sets}[f"{section}.epochs"] is not None
            assert (f"{section}.epochs" in shrunk) == (f"{section}.steps_per_epoch" in shrunk) == in_epochs, recipe
        assert shrunk["experts.train.train_rows"] == 32  # sizes always
