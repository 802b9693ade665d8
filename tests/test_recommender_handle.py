"""The one recommender handle (pipeline/rec/recommender.py): a variant loaded by its registry name
encodes, scores, ranks and explains rows exactly as the pieces it replaced did; the fused-experts
model loads by name through the same call, each row routed by the saved gate; and no consumer
loads a model or the experts' artifacts itself."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import rec_tiny
from params_base import section
from pipeline import layout, schemas
from pipeline.artifacts import read_frame, write_frame
from pipeline.rec.assign import assign_weights
from pipeline.rec.data import load_variant_data, variant_encoder
from pipeline.rec.examples import topn_frame
from pipeline.rec.fused import install_experts
from pipeline.rec.gate import Gate
from pipeline.rec.inputs import rec_inputs
from pipeline.rec.model import ADAPTER_DIR, LoraParams, build_rec_model, load_rec_model, save_rec_model
from pipeline.rec.params import RecParams
from pipeline.rec.reasoning import write_reasoning
from pipeline.rec.recommender import load_recommender
from pipeline.rec.scoring import score_candidates, score_examples
from pipeline.rec.variants import get_variant
from stages.code_deps import imported_names

ROOT = Path(__file__).resolve().parents[1]
LAYERS, UPPER = 4, 2
COLD_USER = 5  # not clustered: the gate sends its rows to the global expert


def _saved_model(root: Path, name: str, seed: int) -> None:
    """A stage-2 variant with a random LoRA (B != 0, so it counts) and projector in data/rec/<name>."""
    torch.manual_seed(seed)
    lora = LoraParams(**section("rec.lora", layers=None, r=4, alpha=8, dropout=0.0))
    rec = build_rec_model(str(root / "tiny"), lora, cf_dim=rec_tiny.CF_DIM, projector_expansion=2)
    for parameter_name, parameter in rec.llm.named_parameters():
        if "lora_B" in parameter_name:
            torch.nn.init.normal_(parameter, std=0.5)
    save_rec_model(rec, root / layout.rec_dir(name))
    if name == "thinkrec":  # two experts: ThinkRec's adapter with its top layers changed, as expert@k saves them
        for k in range(2):
            for parameter_name, parameter in rec.llm.named_parameters():
                if "lora_" in parameter_name and any(f"layers.{i}." in parameter_name for i in range(LAYERS - UPPER, LAYERS)):
                    parameter.data += torch.randn_like(parameter) * 0.5
            rec.llm.save_pretrained(root / layout.expert_dir(k) / ADAPTER_DIR)


def _clusters_and_gate(root: Path) -> None:
    """clustering.json (2 clusters, centroids at users 0 and 1) and a centroid gate, as the stages write them."""
    users = read_frame(root / "data/cf/mf/user_vectors.parquet", schemas.USER_VECTORS)
    vectors = np.stack(users.sort_values("user")["vector"].to_numpy()).astype(np.float32)
    clusters = root / layout.CLUSTERS_DIR
    clusters.mkdir(parents=True)
    (clusters / "clustering.json").write_text(json.dumps({"n": 2, "raw_centroids": vectors[:2].tolist()}))
    write_frame(pd.DataFrame({"user": np.arange(5, dtype=np.int32), "cluster": np.array([0, 1, 0, 1, 0], np.int32)}),
                clusters / "user_clusters.parquet", schemas.USER_CLUSTERS)
    gate = Gate("centroid", vectors[:2], vectors.mean(axis=0), vectors.std(axis=0), 0.1, "global")
    (root / layout.GATE_DIR).mkdir(parents=True)
    (root / layout.GATE_DIR / "gate.json").write_text(json.dumps(gate.state()))


def write_saved_models(root: Path, seeds: dict[str, int]) -> Path:
    """A tiny project under `root`: the tiny model, its artifacts and a saved variant per `seeds` entry."""
    torch.set_num_threads(1)
    rec_tiny.write_tiny_model(root / "tiny", layers=LAYERS)
    rec_tiny.write_tiny_artifacts(root)
    for name, seed in seeds.items():
        _saved_model(root, name, seed=seed)
    return root


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = write_saved_models(tmp_path_factory.mktemp("handle"), {"collm": 1, "thinkrec": 2})
    _clusters_and_gate(root)
    return root


@pytest.fixture
def params(project, monkeypatch) -> RecParams:
    monkeypatch.chdir(project)  # the handle reads pipeline/layout.py's relative paths
    return RecParams.model_validate(rec_tiny.tiny_params(project / "tiny")["rec"])


def _by_hand(params: RecParams, name: str, frame: pd.DataFrame):
    """The previous path: the model, the variant's data and its encoder, assembled from the pieces."""
    spec = get_variant(name)
    rec = load_rec_model(params.backbone, layout.rec_dir(name), "cpu", "float32")
    data = load_variant_data(spec.without_traces(), rec_inputs(spec))
    return rec, data, variant_encoder(spec, params.prompt, rec.tokenizer, data)(frame, None, "encode")


def test_a_variant_loaded_by_name_scores_and_explains_as_the_pieces_did(params):
    recommender = load_recommender("collm", params, "float32")
    test = recommender.data.subset("test_small")
    examples = recommender.encode(test)
    rec, data, expected = _by_hand(params, "collm", test)
    assert [e.prompt_ids for e in examples] == [e.prompt_ids for e in expected]
    assert all(e.expert_weights is None for e in examples)  # no experts, no gate
    scores = recommender.score(examples, 4)
    np.testing.assert_array_equal(scores, score_examples(rec, expected, 4, "float32"))
    assert len(set(np.round(scores, 4))) > len(scores) // 2  # rows really differ
    # one user's candidates: the shared history runs once, the numbers are the same
    candidates = topn_frame(read_frame(layout.TOPN_CANDIDATES, schemas.TOPN_CANDIDATES), data.interactions)
    np.testing.assert_array_equal(
        recommender.score_candidates(recommender.encode(candidates), 8),
        score_candidates(rec, variant_encoder(get_variant("collm"), params.prompt, rec.tokenizer, data)(candidates), 8,
                         "float32"))
    assert recommender.reasons([], 2, 4) == []
    assert recommender.reasons(examples[:3], 2, 5, 2) == write_reasoning(rec, expected[:3], 2, 5, 2, "float32")


def test_a_fused_experts_model_loads_by_name_through_the_same_call(params):
    recommender = load_recommender("thinkrec_experts", params, "float32", upper_layers=UPPER)
    assert (recommender.name, recommender.spec.name, recommender.gate.experts) == ("thinkrec_experts", "thinkrec", 3)
    test = recommender.data.subset("test_small")
    examples = recommender.encode(test)
    weights = np.stack([e.expert_weights for e in examples])  # (9, 3), set by the saved gate
    fused = recommender.score(examples, 4)
    # the previous path: ThinkRec, the experts installed, the gate's weights assigned by hand
    rec, data, expected = _by_hand(params, "thinkrec", test)
    install_experts(rec, [layout.expert_dir(0), layout.expert_dir(1)], UPPER)
    gate = Gate.from_state(json.loads((layout.GATE_DIR / "gate.json").read_text()))
    np.testing.assert_array_equal(weights, assign_weights(expected, gate, data.vectors, {0, 1, 2, 3, 4}))
    np.testing.assert_array_equal(fused, score_examples(rec, expected, 4, "float32"))
    # the experts count: global-only rows (the cold user's among them) keep ThinkRec's scores, the others do not
    alone = load_recommender("thinkrec", params, "float32")
    plain = alone.score(alone.encode(test), 4)
    to_global = weights[:, -1] == 1.0
    assert to_global[test["user"].to_numpy() == COLD_USER].all() and (~to_global).sum() >= 3
    np.testing.assert_allclose(fused[to_global], plain[to_global], rtol=1e-5, atol=1e-5)
    assert np.abs(fused[~to_global] - plain[~to_global]).min() > 1e-4


def test_a_fused_model_needs_its_layers_and_may_come_without_its_gate(params):
    with pytest.raises(ValueError, match="upper_layers"):
        load_recommender("thinkrec_experts", params, "float32")
    ungated = load_recommender("thinkrec_experts", params, "float32", upper_layers=UPPER, gate=False)
    assert ungated.gate is None and ungated.encode(ungated.data.subset("valid_small"))[0].expert_weights is None
    with pytest.raises(KeyError, match="unknown LLM-recommender variant 'sasrec'"):
        load_recommender("sasrec", params)


CONSUMERS = ("stages/explain.py", "stages/gate.py", "stages/expert.py", "stages/thinkrec_experts.py",
             "pipeline/cli/recommend.py", "pipeline/ranking/order.py",
             "bench/experts_speed.py", "bench/valid_compare.py")


def _importers(name: str) -> set[str]:
    """The library, stage and benchmark files that import `name` (a dotted module.attribute)."""
    files = [path.relative_to(ROOT) for folder in ("pipeline", "stages", "bench") for path in (ROOT / folder).rglob("*.py")]
    return {str(path) for path in files if name in imported_names(path)}


def test_no_consumer_loads_a_model_or_the_experts_itself():
    handle = {"pipeline/rec/recommender.py"}
    assert _importers("pipeline.rec.model.load_rec_model") == handle
    assert _importers("pipeline.rec.fused.install_experts") == handle
    assert _importers("pipeline.rec.gate.read_gate") == handle
    uses = {consumer for consumer in CONSUMERS
            if any(name.startswith("pipeline.rec.recommender") for name in imported_names(Path(consumer)))}
    assert uses == set(CONSUMERS)
