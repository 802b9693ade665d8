"""The LLM-recommender stages (stage 1 LoRA, stage 2 projector) for two steps on tiny data: loss
goes down, the saved adapter + projector reload to the scores the stage wrote, stage 2 keeps the
stage-1 LoRA byte for byte."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rec_tiny
from pipeline import registry, schemas
from pipeline.artifacts import read_frame
from pipeline.rec.examples import CFVectors, build_catalog, build_examples, dense_vectors
from pipeline.rec.model import load_rec_model
from pipeline.rec.prompts import get_template
from pipeline.rec.scoring import score_examples
from stages.rec_stage import run_rec_stage

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    rec_tiny.write_tiny_model(root / "tiny")
    rec_tiny.write_tiny_artifacts(root)
    rec_tiny.write_params(root, rec_tiny.tiny_params(root / "tiny"))
    return root


def _reloaded_scores(root: Path, variant: str, cf: bool, keywords: bool) -> tuple[np.ndarray, np.ndarray]:
    """(rows, scores) of valid_small + test_small rescored by a fresh load of the saved variant."""
    rec = load_rec_model(str(root / "tiny"), root / "data/rec" / variant)
    frame = read_frame(root / "data/ingest/interactions.parquet", schemas.INTERACTIONS)
    subsets = read_frame(root / "data/ingest/subsets.parquet")
    frame = frame[frame["row"].isin(subsets["row"])]
    items = read_frame(root / "data/ingest/items.parquet")
    kw = read_frame(root / "data/keywords/item_keywords.parquet") if keywords else None
    vectors = None
    if cf:
        vectors = CFVectors(dense_vectors(read_frame(root / "data/cf/mf/user_vectors.parquet"), "user", "u"),
                            dense_vectors(read_frame(root / "data/cf/mf/item_vectors.parquet"), "item", "i"))
    catalog = build_catalog(items, kw, title_words=3, keywords_per_item=2 if keywords else 0)
    examples = build_examples(frame, catalog, rec.tokenizer, get_template("v2"), 3, vectors)
    return frame["row"].to_numpy(), score_examples(rec, examples, 4, "float32")


def _check_variant(root: Path, variant: str, cf: bool, keywords: bool) -> dict:
    log = json.loads((root / "data/rec" / variant / "train_log.json").read_text())
    assert len(log["steps"]) == 2
    assert log["probe_loss_after"] < log["probe_loss_before"]
    assert (root / "data/rec" / variant / "adapter/adapter_model.safetensors").exists()
    assert (root / "data/rec" / variant / "projector.pt").exists() == cf
    assert not list((root / "data/rec" / variant / "adapter").glob("model*.safetensors"))  # no whole model
    predictions = read_frame(root / f"data/predictions/{variant}.parquet", schemas.PREDICTIONS)
    pointwise = predictions[predictions["row"] >= 0]
    assert len(pointwise) == 18 and pointwise["row"].is_unique
    candidates = read_frame(root / "data/ingest/topn_candidates.parquet")
    topn = predictions[predictions["row"] == -1]
    if registry.get_model(variant).topn:  # the registry says which variants rank the top-N candidates
        assert sorted(zip(topn["user"], topn["item"])) == sorted(zip(candidates["user"], candidates["item"]))
    else:
        assert topn.empty
    rows, scores = _reloaded_scores(root, variant, cf, keywords)
    written = pointwise.set_index("row").loc[rows, "score"].to_numpy()
    np.testing.assert_allclose(written, scores, rtol=1e-5, atol=1e-5)
    return log


def _run_tallrec(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "stages.train_rec", "tallrec"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def tallrec(project):
    """`project` after one `python -m stages.train_rec tallrec` run (its CompletedProcess)."""
    result = _run_tallrec(project)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_stage1_cli_two_steps_lowers_loss_and_reloads_to_identical_scores(project, tallrec):
    assert "tallrec: stage 1, 15 train rows" in tallrec.stdout
    log = _check_variant(project, "tallrec", cf=False, keywords=False)
    metrics = json.loads((project / "metrics/tallrec_train.json").read_text())
    assert metrics["best_step"] == 2 and metrics["total_seconds"] > 0 and metrics["valid_small"]["auc"] is not None
    assert not {"total_seconds", "train_seconds", "test_rows_per_second"} & set(log)
    first = read_frame(project / "data/predictions/tallrec.parquet")
    first_log = (project / "data/rec/tallrec/train_log.json").read_bytes()
    assert _run_tallrec(project).returncode == 0
    again = read_frame(project / "data/predictions/tallrec.parquet")
    assert first.equals(again)  # seeded: a rerun gives the same scores
    assert (project / "data/rec/tallrec/train_log.json").read_bytes() == first_log  # no timings inside


def test_stage2_freezes_the_stage1_lora_and_thinkrec_trains_on_traces(project, tallrec, monkeypatch):
    monkeypatch.chdir(project)
    run_rec_stage("collm")  # what `python -m stages.train_rec collm` runs
    collm = _check_variant(project, "collm", cf=True, keywords=False)
    thinking = run_rec_stage("thinkrec_stage1")["log"]  # stage 1 with keywords + traces: not reported
    assert thinking["rows"]["reasoning"] == 4 and not (project / "data/predictions/thinkrec_stage1.parquet").exists()
    assert any(step["kinds"].get("reasoning") for step in thinking["steps"])
    assert thinking["micro_batches"]["labels"] == collm["micro_batches"]["labels"] > 0  # traces are added
    run_rec_stage("thinkrec")
    think = _check_variant(project, "thinkrec", cf=True, keywords=True)
    assert collm["rows"]["reasoning"] == 0 and think["rows"]["reasoning"] == 4
    # stage 2 trains the projector only: its adapter is its stage-1 LoRA byte for byte
    adapter = "adapter/adapter_model.safetensors"
    read = lambda name: (project / "data/rec" / name / adapter).read_bytes()  # noqa: E731
    assert read("collm") == read("tallrec") and read("thinkrec") == read("thinkrec_stage1")
    assert read("thinkrec_stage1") != read("tallrec")
    # stage 2 learns from train rows stage 1 never saw: 15 + 15 distinct rows of the 30
    metrics = json.loads((project / "metrics/collm_train.json").read_text())
    assert metrics["stage1_overlap"] == 0 and metrics["train_rows"] == 15 and metrics["precision"] == "float32"
    assert len(set(collm["train_rows"]) | set(json.loads(
        (project / "data/rec/tallrec/train_log.json").read_text())["train_rows"])) == 30
