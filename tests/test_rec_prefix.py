"""Prefix-cached scoring equals full-prompt scoring: the shared system part for pointwise rows, one
user's whole history for top-N candidates (CF soft tokens included in both parts)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import rec_tiny
from params_base import section
from pipeline import schemas
from pipeline.artifacts import read_frame
from pipeline.rec.batching import collate
from pipeline.rec.examples import CFVectors, build_catalog, build_examples, dense_vectors, topn_frame
from pipeline.rec.model import LoraParams, build_rec_model
from pipeline.rec.prefix import split_example
from pipeline.rec.prompts import BREAK, get_template
from pipeline.rec.scoring import score_candidates, score_examples, yes_logits


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("prefix")
    rec_tiny.write_tiny_model(root / "tiny")
    rec_tiny.write_tiny_artifacts(root)
    torch.manual_seed(5)
    lora = LoraParams(**section("rec.lora", layers=None, r=4, alpha=8, dropout=0.0))
    rec = build_rec_model(str(root / "tiny"), lora, cf_dim=rec_tiny.CF_DIM,
                          projector_expansion=2)
    for name, param in rec.llm.named_parameters():
        if "lora_B" in name:  # peft starts B at zero; a real adapter changes the keys/values
            torch.nn.init.normal_(param, std=0.5)
    rec.eval()
    vectors = CFVectors(dense_vectors(read_frame(root / "data/cf/mf/user_vectors.parquet"), "user", "u"),
                        dense_vectors(read_frame(root / "data/cf/mf/item_vectors.parquet"), "item", "i"))
    frame = read_frame(root / "data/ingest/interactions.parquet", schemas.INTERACTIONS)
    catalog = build_catalog(read_frame(root / "data/ingest/items.parquet"), None, 3, 0)
    return rec, vectors, frame, catalog


def _full_scores(rec, examples):
    with torch.no_grad():
        return yes_logits(rec, collate(examples, rec.pad_id, with_answers=False)).numpy()


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_pointwise_scores_with_the_shared_system_prefix_equal_full_passes(setup, version):
    rec, vectors, frame, catalog = setup
    examples = build_examples(frame.iloc[5:25], catalog, rec.tokenizer, get_template(version), 3, vectors)
    assert len({tuple(e.prompt_ids[: e.shared_len]) for e in examples}) == 1 and examples[0].shared_len > 0
    scores = score_examples(rec, examples, batch_size=6, dtype="float32")
    np.testing.assert_allclose(scores, _full_scores(rec, examples), rtol=1e-5, atol=1e-5)


def test_topn_candidates_scored_against_one_cached_history_equal_full_passes(setup):
    rec, vectors, frame, catalog = setup
    test = frame[frame["split"] == "test"]
    candidates = []
    for user, rows in test.groupby("user"):  # the last test row's history; 6 candidate items each
        row = int(rows["row"].iloc[-1])
        items = [int(rows["item"].iloc[-1])] + [i for i in range(12) if i != rows["item"].iloc[-1]][:5]
        candidates += [(user, item, int(k == 0), row) for k, item in enumerate(items)]
    candidates = pd.DataFrame(candidates, columns=["user", "item", "positive", "row"])
    examples = build_examples(topn_frame(candidates, frame), catalog, rec.tokenizer, get_template("v2"), 3, vectors)
    assert all(e.row == -1 for e in examples)
    prefix, suffix = split_example(examples[0], examples[0].target_start)
    assert len(prefix.slot_positions) >= 1 and len(suffix.slot_positions) == 1  # user + history | target
    scores = score_candidates(rec, examples, batch_size=4, dtype="float32")
    np.testing.assert_allclose(scores, _full_scores(rec, examples), rtol=1e-5, atol=1e-5)
    assert np.std(scores) > 1e-3  # candidates differ, so do their scores


def test_split_example_keeps_each_slot_with_its_part(setup):
    rec, vectors, frame, catalog = setup
    example = build_examples(frame.iloc[20:21], catalog, rec.tokenizer, get_template("v2"), 3, vectors)[0]
    prefix, suffix = split_example(example, example.target_start)
    assert prefix.prompt_ids + suffix.prompt_ids == example.prompt_ids
    assert len(prefix.slot_positions) + len(suffix.slot_positions) == len(example.slot_positions)
    assert len(suffix.slot_positions) == 1  # the target's slot
    np.testing.assert_array_equal(suffix.slot_vectors[0], example.slot_vectors[-1])
    assert suffix.prompt_ids[suffix.slot_positions[0]] == rec.pad_id


def test_rows_that_do_not_share_the_prefix_are_refused(setup):
    rec, vectors, frame, catalog = setup
    a, b = build_examples(frame.iloc[20:22], catalog, rec.tokenizer, get_template("v2"), 3, vectors)
    b.user = a.user  # same user, different history: not one top-N group
    with pytest.raises(ValueError, match="does not share the .*-token prefix|CF vectors in the shared prefix differ"):
        score_candidates(rec, [a, b], batch_size=2, dtype="float32")
    assert BREAK not in rec.tokenizer.decode(a.prompt_ids)
