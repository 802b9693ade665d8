"""Expert fusion: the split body equals the full body; per-row fused scores in one mixed batch equal
scoring each row with a peft adapter merged exactly for that row's weights; expert training on
cached lower layers matches a full pass and trains only the top layers; clusters and gates."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from peft import PeftModel

import rec_tiny
from params_base import section
from pipeline import schemas
from pipeline.artifacts import read_frame
from pipeline.experts.clusters import cluster_users
from pipeline.rec.fused import install_experts
from pipeline.rec.gate import Gate, centroid_weights, route_kinds
from pipeline.experts.params import ExpertTrainParams
from pipeline.experts.training import train_expert
from pipeline.rec.batching import collate
from pipeline.rec.examples import CFVectors, build_catalog, build_examples, dense_vectors, topn_frame
from pipeline.rec.fusion import mixture_factors, routing
from pipeline.rec.losses import LossParams
from pipeline.rec.model import ADAPTER_DIR, LoraParams, RecModel, build_rec_model, load_backbone, save_rec_model
from pipeline.rec.prompts import get_template
from pipeline.rec.scoring import score_candidates, score_examples, yes_logits
from pipeline.rec.packing import singletons
from pipeline.rec.split_body import lower_states, upper_states

LAYERS, UPPER = 4, 2


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A 4-layer tiny model with a random global LoRA + projector saved in `global/`, and two
    experts saved like the expert stage saves them (the global adapter with its top 2 layers changed)."""
    root = tmp_path_factory.mktemp("experts")
    rec_tiny.write_tiny_model(root / "tiny", layers=LAYERS)
    rec_tiny.write_tiny_artifacts(root)
    torch.manual_seed(3)
    lora = LoraParams(**section("rec.lora", layers=None, r=4, alpha=8, dropout=0.0))
    rec = build_rec_model(str(root / "tiny"), lora, cf_dim=rec_tiny.CF_DIM,
                          projector_expansion=2)
    for name, param in rec.llm.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)
    save_rec_model(rec, root / "global")
    for k in range(2):
        for name, param in rec.llm.named_parameters():
            if "lora_" in name and any(f"layers.{i}." in name for i in range(LAYERS - UPPER, LAYERS)):
                param.data += torch.randn_like(param) * 0.5
        rec.llm.save_pretrained(root / f"expert_{k}" / ADAPTER_DIR)
    vectors = CFVectors(dense_vectors(read_frame(root / "data/cf/mf/user_vectors.parquet"), "user", "u"),
                        dense_vectors(read_frame(root / "data/cf/mf/item_vectors.parquet"), "item", "i"))
    frame = read_frame(root / "data/ingest/interactions.parquet", schemas.INTERACTIONS)
    catalog = build_catalog(read_frame(root / "data/ingest/items.parquet"), None, 3, 0)
    return root, vectors, frame, catalog


def _load(root, experts=True) -> RecModel:
    from pipeline.rec.model import load_rec_model

    rec = load_rec_model(str(root / "tiny"), root / "global")
    if experts:
        install_experts(rec, [root / "expert_0", root / "expert_1"], UPPER)
    return rec


def _examples(rec, setup, rows=slice(6, 30)):
    root, vectors, frame, catalog = setup
    return build_examples(frame.iloc[rows], catalog, rec.tokenizer, get_template("v2"), 3, vectors)


def _merged_reference_score(root, example, weights) -> float:
    """The row scored by a peft model holding the three whole adapters, merged for this row's
    weights with add_weighted_adapter(..., "cat") (the exact combination)."""
    model, tokenizer = load_backbone(str(root / "tiny"))
    llm = PeftModel.from_pretrained(model, root / "expert_0" / ADAPTER_DIR, adapter_name="e0")
    llm.load_adapter(root / "expert_1" / ADAPTER_DIR, adapter_name="e1")
    llm.load_adapter(root / "global" / ADAPTER_DIR, adapter_name="g")
    llm.add_weighted_adapter(["e0", "e1", "g"], [float(w) for w in weights], "mix", combination_type="cat")
    llm.set_adapter("mix")
    projector = _load(root, experts=False).projector
    rec = RecModel(llm, tokenizer, projector).eval()
    with torch.no_grad():
        return float(yes_logits(rec, collate([example], rec.pad_id, with_answers=False))[0])


def test_lower_then_upper_layers_equal_the_full_body(setup):
    rec = _load(setup[0], experts=False).eval()
    batch = collate(_examples(rec, setup), rec.pad_id, with_answers=True)
    with torch.no_grad():
        full = rec.hidden_states(batch)
        split = upper_states(rec, lower_states(rec, batch, LAYERS - UPPER), batch.attention_mask, LAYERS - UPPER)
    torch.testing.assert_close(split, full, rtol=1e-5, atol=1e-5)


def test_mixed_batch_fusion_equals_a_cat_merged_adapter_per_row(setup):
    root = setup[0]
    rec = _load(root)
    examples = _examples(rec, setup, slice(10, 16))
    mixtures = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.3, 0.7, 0], [0.2, 0.5, 0.3], [0.6, 0, 0.4]]
    for example, weights in zip(examples, mixtures):
        example.expert_weights = np.array(weights, dtype=np.float32)
    fused = score_examples(rec, examples, batch_size=6, dtype="float32")  # one mixed batch
    merged = np.array([_merged_reference_score(root, e, w) for e, w in zip(examples, mixtures)])
    np.testing.assert_allclose(fused, merged, rtol=1e-4, atol=1e-4)
    assert len(set(np.round(fused, 4))) == len(fused)  # the experts really differ


def test_fused_global_weights_equal_the_model_without_experts(setup):
    root = setup[0]
    plain, fused = _load(root, experts=False), _load(root)
    examples = _examples(plain, setup)
    expected = score_examples(plain, examples, 8, "float32")
    for example in examples:
        example.expert_weights = np.array([0, 0, 1], dtype=np.float32)
    np.testing.assert_allclose(score_examples(fused, examples, 8, "float32"), expected, rtol=1e-5, atol=1e-5)


def test_topn_prefix_cache_with_expert_weights_equals_full_passes(setup):
    root, vectors, frame, catalog = setup
    rec = _load(root)
    test = frame[frame["split"] == "test"]
    rows = []
    for user, part in test.groupby("user"):
        positive = int(part["item"].iloc[-1])
        for item in [positive] + [i for i in range(8) if i != positive][:4]:
            rows.append({"row": int(part["row"].iloc[-1]), "user": user, "item": item, "positive": item == positive})
    import pandas as pd

    examples = build_examples(topn_frame(pd.DataFrame(rows), frame), catalog, rec.tokenizer, get_template("v2"), 3,
                              vectors)
    for example in examples:
        example.expert_weights = np.array([0.5, 0.25, 0.25] if example.user % 2 else [0, 1, 0], dtype=np.float32)
    cached = score_candidates(rec, examples, batch_size=3, dtype="float32")
    with torch.no_grad():
        full = yes_logits(rec, collate(examples, rec.pad_id, with_answers=False)).numpy()
    np.testing.assert_allclose(cached, full, rtol=1e-4, atol=1e-4)


def test_fused_layers_refuse_a_batch_without_weights(setup):
    rec = _load(setup[0])
    batch = collate(_examples(rec, setup, slice(6, 8)), rec.pad_id, with_answers=False)
    with pytest.raises(ValueError, match="expert weights"):
        rec.hidden_states(batch)


def test_mixture_factors_give_the_weighted_sum_of_updates():
    torch.manual_seed(0)
    a, b, w = torch.randn(3, 4, 10), torch.randn(3, 6, 4), torch.tensor([0.2, 0.5, 0.3])
    mixed_a, mixed_b = mixture_factors(a, b, 2.0, w)
    expected = sum(w[k] * 2.0 * b[k] @ a[k] for k in range(3))
    torch.testing.assert_close(mixed_b @ mixed_a, expected)


def _train_params(**overrides) -> ExpertTrainParams:
    values = dict(prompt="cf", upper_layers=UPPER, train_rows=16, batch_size=4, lr=0.01, weight_decay=0.0,
                  warmup_steps=0, reasoning_share=0.0, dtype="float32", seed=1)
    return ExpertTrainParams(**section("experts.train", **{**values, **overrides}))


def test_expert_training_on_cached_lower_layers_matches_full_passes_and_trains_only_the_top(setup):
    root = setup[0]
    logs, states = [], []
    loss_params = LossParams(**section("rec.loss"))
    for cached in (True, False):
        rec = _load(root, experts=False)
        before = {n: p.detach().clone() for n, p in rec.llm.named_parameters() if "lora_" in n}
        logs.append(train_expert(rec, singletons(_examples(rec, setup)), [], _train_params(), loss_params,
                                 cached=cached))
        changed = {n for n, p in rec.llm.named_parameters() if "lora_" in n and not torch.equal(p, before[n])}
        assert changed and all(any(f"layers.{i}." in n for i in range(LAYERS - UPPER, LAYERS)) for n in changed)
        states.append({n: p.detach().clone() for n, p in rec.llm.named_parameters() if n in changed})
    assert [s["loss"] for s in logs[0]["steps"]] == pytest.approx([s["loss"] for s in logs[1]["steps"]], rel=1e-4)
    for name in states[0]:
        torch.testing.assert_close(states[0][name], states[1][name], rtol=1e-4, atol=1e-5)


def test_centroid_gate_rules():
    centroids = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    vectors = np.array([[1.0, 0.05], [1.0, 1.0], [1.0, 0.9]], dtype=np.float32)
    weights = centroid_weights(vectors, centroids, temperature=0.1)
    np.testing.assert_array_equal(weights[0], [1, 0, 0])  # close to cluster 0: that expert alone
    np.testing.assert_array_equal(weights[1], [0, 0, 1])  # equally close to both: the global expert
    assert weights[2, 2] == 0 and 0.5 < weights[2, 0] < 0.8 and weights[2].sum() == pytest.approx(1)
    assert route_kinds(weights) == {"single_cluster": 1, "global": 1, "mixture": 1}
    gate = Gate("centroid", centroids, np.zeros(2, np.float32), np.ones(2, np.float32), 0.1, "global")
    np.testing.assert_array_equal(gate.weights(vectors[:1], np.array([False]))[0], [0, 0, 1])  # cold -> global
    assert Gate.from_state(gate.state()).weights(vectors, np.ones(3, bool)).tolist() == weights.tolist()


def test_clusters_pick_the_separated_count_and_number_by_size():
    rng = np.random.default_rng(0)
    centres = np.array([[5, 0, 0], [0, 5, 0], [0, 0, 5]], dtype=np.float32)
    sizes = [10, 30, 20]
    vectors = np.concatenate([c + rng.normal(scale=0.3, size=(n, 3)) for c, n in zip(centres, sizes)]).astype(np.float32)
    users = np.arange(len(vectors))
    for method in ("kmeans", "ward"):
        result = cluster_users(users, vectors, method, None, range(2, 7), seed=1)
        assert result.n == 3 and max(result.silhouettes, key=result.silhouettes.get) == 3
        assert np.bincount(result.labels).tolist() == [30, 20, 10]
        np.testing.assert_allclose(result.raw_centroids[0], centres[1], atol=0.2)
    again = cluster_users(users, vectors, "kmeans", 3, range(2, 7), seed=1)
    np.testing.assert_array_equal(again.labels, cluster_users(users, vectors, "kmeans", 3, range(2, 7), seed=1).labels)


def test_routing_weights_cleared_after_the_pass(setup):
    rec = _load(setup[0])
    from pipeline.rec.fusion import fused_layers

    with routing(rec.body, torch.ones(1, 3) / 3):
        assert all(layer.weights is not None for layer in fused_layers(rec.body))
    assert all(layer.weights is None for layer in fused_layers(rec.body))


def test_global_only_rows_reuse_the_reference_scores_and_the_rest_are_scored():
    from pipeline.rec.assign import scores_with_reuse
    from pipeline.rec.examples import RecExample

    weights = [[0, 0, 1], [1, 0, 0], [0.2, 0.3, 0.5], [0, 0, 1]]
    examples = [RecExample(i, i, i, 1, [1], [2], expert_weights=np.array(w, np.float32)) for i, w in enumerate(weights)]
    seen = []

    def score(rows):
        seen.extend(e.row for e in rows)
        return np.array([10.0 + e.row for e in rows], dtype=np.float32)

    scores, fused = scores_with_reuse(examples, np.array([0.5, 0.6, 0.7, 0.8]), score)
    assert seen == [1, 2] and fused == 2
    np.testing.assert_allclose(scores, [0.5, 11.0, 12.0, 0.8])
