"""The three LLM-recommender stages for two steps on tiny data: loss goes down, the saved adapter +
projector reload to the scores the stage wrote."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rec_tiny
from pipeline import schemas
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
    examples = build_examples(frame, catalog, rec.tokenizer, get_template("v1"), 3, vectors)
    return frame["row"].to_numpy(), score_examples(rec, examples, 4, "float32")


def _check_variant(root: Path, variant: str, cf: bool, keywords: bool) -> dict:
    log = json.loads((root / "data/rec" / variant / "train_log.json").read_text())
    assert len(log["steps"]) == 2
    assert log["probe_loss_after"] < log["probe_loss_before"]
    assert (root / "data/rec" / variant / "adapter/adapter_model.safetensors").exists()
    assert (root / "data/rec" / variant / "projector.pt").exists() == cf
    assert not list((root / "data/rec" / variant / "adapter").glob("model*.safetensors"))  # no whole model
    predictions = read_frame(root / f"data/predictions/{variant}.parquet", schemas.PREDICTIONS)
    assert len(predictions) == 18 and predictions["row"].is_unique
    rows, scores = _reloaded_scores(root, variant, cf, keywords)
    written = predictions.set_index("row").loc[rows, "score"].to_numpy()
    np.testing.assert_allclose(written, scores, rtol=1e-5, atol=1e-5)
    return log


def _run_train_text(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "stages.train_text"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def tallrec(project):
    """`project` after one `python -m stages.train_text` run (its CompletedProcess)."""
    result = _run_train_text(project)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_train_text_cli_two_steps_lowers_loss_and_reloads_to_identical_scores(project, tallrec):
    assert "tallrec: 30 train rows" in tallrec.stdout
    log = _check_variant(project, "tallrec", cf=False, keywords=False)
    metrics = json.loads((project / "metrics/tallrec_train.json").read_text())
    assert metrics["best_step"] == log["best_step"] and metrics["total_seconds"] > 0
    assert not {"total_seconds", "train_seconds", "test_rows_per_second"} & set(log)
    first = read_frame(project / "data/predictions/tallrec.parquet")
    first_log = (project / "data/rec/tallrec/train_log.json").read_bytes()
    assert _run_train_text(project).returncode == 0
    again = read_frame(project / "data/predictions/tallrec.parquet")
    assert first.equals(again)  # seeded: a rerun gives the same scores
    assert (project / "data/rec/tallrec/train_log.json").read_bytes() == first_log  # no timings inside


def test_train_cf_then_train_think_continue_from_the_previous_variant(project, tallrec, monkeypatch):
    monkeypatch.chdir(project)
    run_rec_stage("collm")  # what `python -m stages.train_cf` runs
    collm = _check_variant(project, "collm", cf=True, keywords=False)
    run_rec_stage("thinkrec")  # what `python -m stages.train_think` runs
    think = _check_variant(project, "thinkrec", cf=True, keywords=True)
    assert collm["rows"]["reasoning"] == 0 and think["rows"]["reasoning"] == 4
    # collm trains the projector only: its adapter equals tallrec's byte for byte
    adapter = "adapter/adapter_model.safetensors"
    assert (project / "data/rec/collm" / adapter).read_bytes() == (project / "data/rec/tallrec" / adapter).read_bytes()
    assert (project / "data/rec/thinkrec" / adapter).read_bytes() != (project / "data/rec/collm" / adapter).read_bytes()
