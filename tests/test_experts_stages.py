"""The expert stages end to end on tiny data: ThinkRec (stage 1 + 2), clusters, one expert stage per
slot (slots past the cluster count write a marker), the gate (centroid and trained), and
ThinkRec with experts scored per row; rows routed to the global expert keep ThinkRec's scores."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from safetensors.torch import load_file

import rec_tiny
from params_base import section
from pipeline import registry, schemas
from pipeline.artifacts import read_frame, write_frame
from pipeline.experts.assembly import expert_start
from pipeline.experts.params import ExpertsParams
from pipeline.params import load_section
from pipeline.rec.params import RecParams
from pipeline.rec.recommender import load_recommender
from registry_swap import run_with_models
from recommend_project import stamp_as_the_stage
from tiny_ingest import write_cf_selection

pytestmark = pytest.mark.slow  # eleven stage processes: about a minute on 2 quiet cores


# the registry with the fused model and ThinkRec also ranking the sampled top-N candidates (the
# default's do not: they rank the full catalogue), so the fused scoring's reuse of ThinkRec's is tested
MODELS = tuple(dataclasses.replace(entry, topn=True) if entry.name in ("thinkrec", "thinkrec_experts") else entry
               for entry in registry.MODELS)


def _run(root: Path, module: str, *args: str) -> str:
    done = run_with_models(root, module, MODELS, *args)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _experts_params(root: Path, gate_kind: str) -> dict:
    params = rec_tiny.tiny_params(root / "tiny")
    params["experts"] = {
        "n": 2, "slots": [0, 1, 2], "method": "kmeans", "seed": 1, "cluster_users": "train", "cold": "global",
        "train": {"prompt": "cf", "upper_layers": 2, "train_rows": 12, "batch_size": 4, "lr": 0.01, "weight_decay": 0.0,
                  "warmup_steps": 0, "reasoning_share": 0.5, "dtype": "float32", "seed": 3, "epochs": None,
                  "steps_per_epoch": None, "patience": None, "min_lr": 0.0, "warmup_lr": None},
    }
    params["recommend"] = {"model": "thinkrec_experts", "candidates": 5, "k": 3, "explain": 1, "threads": 1}
    params["explain"] = section("explain", models=["thinkrec"], rows=4, max_new_tokens=4, min_new_tokens=2,
                                batch_size=2, dtype="float32", threads=1)
    params["gate"] = {"kind": gate_kind, "temperature": 0.1, "subset": "valid_small",
                      "train": {"hidden": 4, "epochs": 2, "batch_size": 4, "lr": 0.05, "seed": 3}}
    return params


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("experts_project")
    rec_tiny.write_tiny_model(root / "tiny", layers=4)
    rec_tiny.write_tiny_artifacts(root)
    rec_tiny.write_params(root, _experts_params(root, "centroid"))
    write_frame(pd.DataFrame({"user": range(6), "raw_id": [f"u{u}" for u in range(6)]}),
                root / "data/ingest/users.parquet", schemas.USERS)
    for variant in ("thinkrec_stage1", "thinkrec"):
        _run(root, "stages.train_rec", variant)
    _run(root, "stages.clusters")
    for slot in range(3):
        _run(root, "stages.expert", str(slot))
    return root


def test_clusters_and_one_expert_per_used_slot(project):
    clustering = json.loads((project / "data/experts/clusters/clustering.json").read_text())
    assert clustering["n"] == 2 and sum(clustering["sizes"]) == 6
    metrics = json.loads((project / "metrics/clusters.json").read_text())
    assert (metrics["cluster_users"], metrics["clustered_users"], metrics["cold_users"]) == ("train", 6, 0)
    assert json.loads((project / "data/experts/expert_0/expert.json").read_text())["from"] == "thinkrec"
    unused = json.loads((project / "data/experts/expert_2/expert.json").read_text())
    assert unused == {"slot": 2, "used": False, "clusters": 2}
    base = load_file(str(project / "data/rec/thinkrec/adapter/adapter_model.safetensors"))
    for slot in (0, 1):
        expert = load_file(str(project / f"data/experts/expert_{slot}/adapter/adapter_model.safetensors"))
        assert expert.keys() == base.keys()  # a whole adapter, servable alone
        changed = {k for k in base if not np.array_equal(base[k].numpy(), expert[k].numpy())}
        assert changed and all(".layers.2." in k or ".layers.3." in k for k in changed)  # top 2 of 4 layers only


def test_centroid_gate_and_fused_scoring(project):
    _run(project, "stages.gate")
    out = _run(project, "stages.thinkrec_experts")
    assert "thinkrec_experts:" in out
    predictions = read_frame(project / "data/predictions/thinkrec_experts.parquet", schemas.PREDICTIONS)
    reference = read_frame(project / "data/predictions/thinkrec.parquet", schemas.PREDICTIONS)
    pointwise = predictions[predictions["row"] >= 0].set_index("row")
    assert len(pointwise) == 9
    metrics = json.loads((project / "metrics/thinkrec_experts_scoring.json").read_text())
    routes = metrics["routes"]
    assert sum(routes.values()) == 9
    assert metrics["scored"]["test_small"]["scored_fused"] == 9 - routes["global"]
    assert set(metrics["clusters"]) <= {"0", "1", "cold"}
    assert sum(c["rows"] for c in metrics["clusters"].values()) == 9
    # rows the gate sends to a cluster expert are scored by a different model than ThinkRec's
    joined = pointwise.reset_index().merge(reference[reference["row"] >= 0], on="row", suffixes=("", "_thinkrec"))
    same = np.isclose(joined["score"], joined["score_thinkrec"], atol=1e-6)
    assert same.sum() >= routes["global"]
    if metrics["scored"]["test_small"]["scored_fused"]:
        assert (~same).any()
    assert len(predictions[predictions["row"] == -1]) == len(read_frame(project / "data/ingest/topn_candidates.parquet"))


def test_trained_gate_learns_on_validation_rows(project):
    rec_tiny.write_params(project, _experts_params(project, "trained"))
    _run(project, "stages.gate")
    assert (project / "data/experts/gate/gate.pt").exists()
    metrics = json.loads((project / "metrics/gate.json").read_text())
    assert metrics["kind"] == "trained" and len(metrics["train"]["epochs"]) == 2
    assert metrics["train"]["rows"] == 9  # valid_small, all users warm
    _run(project, "stages.thinkrec_experts")
    routes = json.loads((project / "metrics/thinkrec_experts_scoring.json").read_text())["routes"]
    assert routes["mixture"] == 9  # a softmax gate mixes every row


def test_recommend_with_experts_routes_the_user_through_the_gate(project):
    rec_tiny.write_params(project, _experts_params(project, "centroid"))  # a test above trains a gate
    _run(project, "stages.gate")
    items = read_frame(project / "data/ingest/items.parquet", schemas.ITEMS)  # every user rated every item:
    new = pd.DataFrame({"item": [len(items) + i for i in range(4)], "raw_id": [f"n{i}" for i in range(4)],
                        "title": [f"Story New {i} Movie" for i in range(4)], "categories": [["drama"]] * 4,
                        "description": "", "extra": ""})  # add 4 nobody rated, as candidates
    write_frame(pd.concat([items, new], ignore_index=True), project / "data/ingest/items.parquet", schemas.ITEMS)
    vectors = read_frame(project / "data/cf/mf/item_vectors.parquet", schemas.ITEM_VECTORS)
    extra = np.random.default_rng(0).normal(size=(4, rec_tiny.CF_DIM)).astype(np.float32)
    write_frame(pd.concat([vectors, pd.DataFrame({"item": new["item"], "vector": list(extra)})], ignore_index=True),
                project / "data/cf/mf/item_vectors.parquet", schemas.ITEM_VECTORS)
    write_cf_selection(project, "mf")
    # the models stand for the catalogue with the new items (recommend refuses another ingest's)
    for relative, stage in (("metrics/thinkrec_train.json", "thinkrec"), ("metrics/gate.json", "gate"),
                            ("data/cf_selected/train_log.json", "cf@mf")):
        stamp_as_the_stage(project, relative, stage)
    answer = json.loads(_run(project, "pipeline.cli.main", "recommend", "--user", "u1", "--json"))
    assert answer["model"] == "thinkrec_experts" and len(answer["recommendations"]) == 3
    assert answer["recommendations"][0]["reasoning"]  # generation ran through the fused layers


def test_text_prompt_experts_train_in_the_stage1_variant_and_are_scored_in_the_stage2_model(project, tmp_path,
                                                                                              monkeypatch):
    """experts.train.prompt: text (ThinkRec's stage 3): each expert starts from the stage-1 LoRA and
    trains on text prompts without CF slots; the fused model loads it as it loads a cf expert."""
    root = tmp_path / "text"
    shutil.copytree(project, root)
    params = _experts_params(root, "centroid")
    params["experts"]["train"]["prompt"] = "text"
    rec_tiny.write_params(root, params)
    for slot in (0, 1):
        _run(root, "stages.expert", str(slot))
    stage1 = load_file(str(root / "data/rec/thinkrec_stage1/adapter/adapter_model.safetensors"))
    for slot in (0, 1):
        assert json.loads((root / f"data/experts/expert_{slot}/expert.json").read_text())["from"] == "thinkrec_stage1"
        expert = load_file(str(root / f"data/experts/expert_{slot}/adapter/adapter_model.safetensors"))
        cf_expert = load_file(str(project / f"data/experts/expert_{slot}/adapter/adapter_model.safetensors"))
        assert expert.keys() == stage1.keys()  # the stage-1 LoRA's layers and shapes
        changed = {k for k in stage1 if not np.array_equal(stage1[k].numpy(), expert[k].numpy())}
        assert changed and all(".layers.2." in k or ".layers.3." in k for k in changed)
        assert any(not np.array_equal(expert[k].numpy(), cf_expert[k].numpy()) for k in changed)  # other prompts
    # the examples it trained on: the stage-1 variant's text prompts, no CF slot
    monkeypatch.chdir(root)
    experts = load_section("experts", ExpertsParams)
    recommender = load_recommender(expert_start(experts.train.prompt), load_section("rec", RecParams), "float32")
    assert recommender.spec.name == "thinkrec_stage1" and recommender.rec.projector is None
    frame = recommender.data.interactions
    examples = recommender.encode(frame[frame["split"] == "train"])
    assert examples and all(not e.slot_positions and e.slot_vectors is None for e in examples)
    # the fused scoring loads the text experts into the stage-2 model
    _run(root, "stages.gate")
    _run(root, "stages.thinkrec_experts")
    metrics = json.loads((root / "metrics/thinkrec_experts_scoring.json").read_text())
    assert metrics["experts"] == 3 and sum(metrics["routes"].values()) == 9
    predictions = read_frame(root / "data/predictions/thinkrec_experts.parquet", schemas.PREDICTIONS)
    reference = read_frame(root / "data/predictions/thinkrec.parquet", schemas.PREDICTIONS)
    joined = predictions[predictions["row"] >= 0].merge(reference[reference["row"] >= 0], on="row",
                                                        suffixes=("", "_thinkrec"))
    fused = metrics["scored"]["test_small"]["scored_fused"]
    assert fused == 9 - metrics["routes"]["global"] > 0
    assert (~np.isclose(joined["score"], joined["score_thinkrec"], atol=1e-6)).sum() > 0
