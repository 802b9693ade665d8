"""The explain stage from its CLI on tiny data: a tiny Llama trained to reproduce some gold
traces writes them back through the stage (so the stage rebuilds the prompts it was trained on),
an untrained baseline scores lower, and the outputs follow their schemas."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

import rec_tiny
from params_base import section
from pipeline import schemas
from pipeline.artifacts import read_frame, write_frame
from pipeline.explain.prompts import gold_rows
from pipeline.provenance import without_stamp
from pipeline.rec.examples import CFVectors, build_catalog, build_examples, dense_vectors
from pipeline.rec.losses import LossParams
from pipeline.rec.model import LoraParams, build_rec_model, save_rec_model
from pipeline.rec.prompts import get_template
from pipeline.rec.packing import singletons
from pipeline.rec.training import TrainParams, train_rec_model

REPO = Path(__file__).resolve().parents[1]
TRACES = ["Yes. liked drama", "No. not liked comedy", "Yes. action comedy", "No. drama", "Yes. unused"]
HISTORY, TITLE_WORDS, KEYWORDS = 1, 3, 2
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _write_gold_traces(root: Path) -> pd.DataFrame:
    frame = read_frame(root / "data/ingest/interactions.parquet", schemas.INTERACTIONS)
    test = frame[frame["split"] == "test"].sort_values("row").head(len(TRACES))
    traces = pd.DataFrame({"row": test["row"], "label": test["label"], "trace": TRACES,
                           "rounds": 1, "tokens_in": 10, "tokens_out": 5})
    write_frame(traces, root / "data/traces/gold_traces.parquet", schemas.TRACES)
    return test.assign(trace=TRACES)


def _train_thinkrec_on_traces(root: Path, rows: pd.DataFrame) -> None:
    """Overfit a ThinkRec-style tiny model (CF slots + keywords) to the first 4 gold traces."""
    torch.manual_seed(0)
    lora = LoraParams(**section("rec.lora", layers=None, r=8, alpha=16, dropout=0.0, target_modules=ALL_LINEAR))
    rec = build_rec_model(str(root / "tiny"), lora,
                          cf_dim=rec_tiny.CF_DIM, projector_expansion=2)
    vectors = CFVectors(
        dense_vectors(read_frame(root / "data/cf/mf/user_vectors.parquet"), "user", "users"),
        dense_vectors(read_frame(root / "data/cf/mf/item_vectors.parquet"), "item", "items"),
    )
    catalog = build_catalog(read_frame(root / "data/ingest/items.parquet"),
                            read_frame(root / "data/keywords/item_keywords.parquet"), TITLE_WORDS, KEYWORDS)
    rows = rows.head(4)
    traces = dict(zip(rows["row"].astype(int), rows["trace"]))
    examples = build_examples(rows, catalog, rec.tokenizer, get_template("v2"), HISTORY, vectors, traces, 16)
    params = TrainParams(train_rows=4, steps=100, batch_size=4, grad_accum=1, lr=0.01, weight_decay=0.0,
                         warmup_steps=1, reasoning_share=0.0, eval_every=0, probe_rows=4, dtype="float32", seed=0,
                         epochs=None, steps_per_epoch=None, patience=None, min_lr=0.0, warmup_lr=None)
    train_rec_model(rec, singletons(examples), [], params, LossParams(**section("rec.loss")))
    save_rec_model(rec, root / "data/rec/thinkrec")


@pytest.fixture(scope="module")
def explained(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    torch.set_num_threads(1)
    rec_tiny.write_tiny_model(root / "tiny")
    rec_tiny.write_tiny_artifacts(root)
    params = rec_tiny.tiny_params(root / "tiny")
    params["rec"]["prompt"].update(history_items=HISTORY, title_words=TITLE_WORDS, keywords_per_item=KEYWORDS)
    params["explain"] = section("explain", models=["thinkrec", "tallrec"], rows=4, max_new_tokens=12,
                                min_new_tokens=0, batch_size=2, dtype="float32", threads=1)
    rec_tiny.write_params(root, params)
    rows = _write_gold_traces(root)
    _train_thinkrec_on_traces(root, rows)
    # an untrained text-only baseline: LoRA B = 0, so it is the random backbone itself
    lora = LoraParams(**section("rec.lora", layers=None, r=2, alpha=4))
    save_rec_model(build_rec_model(str(root / "tiny"), lora), root / "data/rec/tallrec")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "stages.explain"], cwd=root, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, result.stdout


def test_stage_reproduces_trained_traces_and_writes_both_models(explained):
    root, stdout = explained
    assert "explain: 4 gold rows" in stdout
    table = read_frame(root / "data/explanations/explanations.parquet", schemas.EXPLANATIONS)
    assert len(table) == 8 and sorted(table["model"].unique()) == ["tallrec", "thinkrec"]
    think = table[table["model"] == "thinkrec"].sort_values("row")
    assert think["gold"].tolist() == TRACES[:4]  # the 5th trace is beyond explain.rows
    exact = (think["explanation"] == think["gold"]).sum()
    assert exact >= 2, think[["explanation", "gold"]].to_string()
    metrics = without_stamp(json.loads((root / "metrics/explanations.json").read_text()))  # per model
    assert set(metrics) == {"thinkrec", "tallrec"}
    for name in metrics:
        assert metrics[name]["n_rows"] == 4
        assert set(metrics[name]) >= {"bleu4", "rouge_l", "meteor", "bertscore_f1", "generation_seconds"}
    assert metrics["thinkrec"]["rouge_l"] > metrics["tallrec"]["rouge_l"] + 0.3
    assert metrics["thinkrec"]["bertscore_f1"] > metrics["tallrec"]["bertscore_f1"]
    assert think["rouge_l"].mean() == pytest.approx(metrics["thinkrec"]["rouge_l"], abs=1e-6)
    # says_nothing (params.yaml's rule: under 4 distinct words, or under 0.4 distinct per word; and symbol
    # soup: over 10% of the non-space characters neither letters, digits nor punctuation) counted per model:
    # the tiny traces are 2-4 words, so a reproduced "Yes. liked drama" (3 words) says nothing
    for name, part in table.groupby("model"):
        words = [re.findall(r"\w+", text.lower()) for text in part["explanation"]]
        soup = [len(re.findall(r"[^\w\s.,;:!?'\"()\[\]\-&/*\u2018\u2019\u201c\u201d]", t)) > 0.1 * len(re.sub(r"\s", "", t))
                for t in part["explanation"]]
        flagged = sum(len(set(w)) < 4 or len(set(w)) < 0.4 * len(w) or s for w, s in zip(words, soup))
        assert metrics[name]["says_nothing"] == flagged
    assert metrics["thinkrec"]["says_nothing"] >= 1


def test_gold_row_missing_from_interactions_is_named(tmp_path):
    interactions = pd.DataFrame({"row": [1, 2], "user": [0, 0]})
    traces = pd.DataFrame({"row": [2, 7], "label": [1, 0], "trace": ["Yes. a", "No. b"],
                           "rounds": 1, "tokens_in": 1, "tokens_out": 1})
    path = write_frame(traces, tmp_path / "gold_traces.parquet", schemas.TRACES)
    with pytest.raises(KeyError, match=r"gold_traces.parquet: row 7 is not in interactions"):
        gold_rows(path, interactions, n_rows=5)
    assert gold_rows(path, interactions, n_rows=1)["row"].tolist() == [2]


def test_no_gold_traces_write_an_empty_explanation_table(tmp_path):
    rec_tiny.write_tiny_artifacts(tmp_path)
    params = rec_tiny.tiny_params(tmp_path / "tiny")
    params["explain"] = section("explain", models=["thinkrec"], rows=4, max_new_tokens=4, min_new_tokens=1,
                                batch_size=2, dtype="float32", threads=1)
    rec_tiny.write_params(tmp_path, params)
    traces = read_frame(tmp_path / "data/traces/traces.parquet", schemas.TRACES).head(0)
    write_frame(traces, tmp_path / "data/traces/gold_traces.parquet", schemas.TRACES)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-m", "stages.explain"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "no gold traces" in done.stdout
    assert len(read_frame(tmp_path / "data/explanations/explanations.parquet", schemas.EXPLANATIONS)) == 0
    assert without_stamp(json.loads((tmp_path / "metrics/explanations.json").read_text())) == {"thinkrec": {"n_rows": 0}}
