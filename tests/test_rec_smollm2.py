"""Slow: scoring with the real SmolLM2. Frozen weights in bf16 with fp32 answer logits agree with
an fp32 forward and tie no more pairs than it (bf16 answer logits near 15 move in steps of 0.0625
and tie most rows); prefix-cached top-N scores equal full prompts."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import rec_tiny
from params_base import section
from pipeline.artifacts import read_frame
from pipeline.rec.batching import collate
from pipeline.rec.examples import CFVectors, build_catalog, build_examples, dense_vectors, topn_frame
from pipeline.rec.model import LoraParams, build_rec_model, use_precision
from pipeline.rec.prompts import get_template
from pipeline.rec.scoring import score_candidates, score_examples, yes_logits
from smollm2_model import smollm2_path

pytestmark = pytest.mark.slow
BF16_TOLERANCE = 0.5  # |bf16-body score - fp32 score| on logits of magnitude ~15


def tied_pairs(scores: np.ndarray) -> int:
    _, counts = np.unique(scores, return_counts=True)
    return int((counts * (counts - 1) // 2).sum())


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("smollm2")
    rec_tiny.write_tiny_artifacts(root)
    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = smollm2_path(root)
    vectors = CFVectors(dense_vectors(read_frame(root / "data/cf/mf/user_vectors.parquet"), "user", "u"),
                        dense_vectors(read_frame(root / "data/cf/mf/item_vectors.parquet"), "item", "i"))
    frame = read_frame(root / "data/ingest/interactions.parquet")
    catalog = build_catalog(read_frame(root / "data/ingest/items.parquet"), None, 4, 0)
    return model, vectors, frame, catalog


@pytest.mark.parametrize("answer_logit", ["yes", "yes_minus_no"])
def test_bf16_body_scores_match_fp32_and_tie_no_more_pairs(setup, answer_logit):
    model, vectors, frame, catalog = setup
    rec = build_rec_model(str(model), LoraParams(**section("rec.lora")), cf_dim=vectors.dim, projector_expansion=2,
                          answer_logit=answer_logit).eval()
    examples = build_examples(frame, catalog, rec.tokenizer, get_template("v2"), 5, vectors)
    fp32 = score_examples(rec, examples, 16, "float32")
    bf16 = score_examples(rec, examples, 16, "bfloat16")
    assert np.abs(bf16 - fp32).max() < BF16_TOLERANCE
    assert np.corrcoef(bf16, fp32)[0, 1] > 0.95
    assert tied_pairs(bf16) <= tied_pairs(fp32)
    if answer_logit == "yes":
        assert np.abs(fp32).mean() > 4  # large raw logits: where bf16 rounding would tie rows


def test_prefix_cached_topn_equals_full_prompts_on_smollm2(setup):
    model, vectors, frame, catalog = setup
    lora = LoraParams(**section("rec.lora"))
    rec = build_rec_model(str(model), lora, cf_dim=vectors.dim, projector_expansion=2).eval()
    use_precision(rec, "float32")
    last = frame[frame["split"] == "test"].iloc[-1]
    candidates = [(int(last["user"]), item, int(item == last["item"]), int(last["row"])) for item in range(8)]
    table = pd.DataFrame(candidates, columns=["user", "item", "positive", "row"])
    examples = build_examples(topn_frame(table, frame), catalog, rec.tokenizer, get_template("v2"), 5, vectors)
    cached = score_candidates(rec, examples, 4, "float32")
    with torch.no_grad():
        full = yes_logits(rec, collate(examples, rec.pad_id, with_answers=False)).numpy()
    np.testing.assert_allclose(cached, full, atol=1e-3)
