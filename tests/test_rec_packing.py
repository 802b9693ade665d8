"""Packed training rows (pipeline/rec/packing.py): several targets after one history prefix give,
per target, what that target's own single-row prompt on the anchor's history gives (fp32, eval
mode, CF slots included); a pack of one row is the unpacked row; blocks, shares and schedules."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

import rec_tiny
from params_base import section
from pipeline import schemas
from pipeline.artifacts import read_frame
from pipeline.rec.batching import collate, collate_packs
from pipeline.rec.examples import CFVectors, build_catalog, build_examples, dense_vectors
from pipeline.rec.losses import LossParams, rec_loss
from pipeline.rec.model import LoraParams, build_rec_model
from pipeline.rec.packing import Pack, disjoint_shares, label_blocks, packed_attention_mask, singletons
from pipeline.rec.prompts import get_template
from pipeline.rec.scoring import yes_logits
from pipeline.rec.training import label_batches, with_extras

TOLERANCE = 1e-5  # fp32: the packed and single-row passes differ only in summation order


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("packing")
    rec_tiny.write_tiny_model(root / "tiny")
    rec_tiny.write_tiny_artifacts(root)
    torch.manual_seed(3)
    lora = LoraParams(**section("rec.lora", layers=None, r=4, alpha=8, dropout=0.0))
    rec = build_rec_model(str(root / "tiny"), lora, cf_dim=rec_tiny.CF_DIM, projector_expansion=2)
    for name, param in rec.llm.named_parameters():
        if "lora_B" in name:  # peft starts B at zero; a trained adapter changes every layer
            torch.nn.init.normal_(param, std=0.5)
    rec.eval()
    vectors = CFVectors(dense_vectors(read_frame(root / "data/cf/mf/user_vectors.parquet"), "user", "u"),
                        dense_vectors(read_frame(root / "data/cf/mf/item_vectors.parquet"), "item", "i"))
    frame = read_frame(root / "data/ingest/interactions.parquet", schemas.INTERACTIONS)
    catalog = build_catalog(read_frame(root / "data/ingest/items.parquet"), None, 3, 0)
    return rec, vectors, frame, catalog


def _encode(setup, rows: pd.DataFrame, with_vectors: bool = True):
    rec, vectors, _, catalog = setup
    return build_examples(rows, catalog, rec.tokenizer, get_template("v2"), 3, vectors if with_vectors else None)


def _on_anchor_history(rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` with every row showing the first row's history and user state (what a pack shows)."""
    out = rows.copy()
    first = rows.iloc[0]
    out["history_items"] = [first["history_items"]] * len(rows)
    out["history_labels"] = [first["history_labels"]] * len(rows)
    out["state_row"] = int(first["row"])
    return out


def _user_rows(frame: pd.DataFrame, user: int, count: int) -> pd.DataFrame:
    rows = frame[(frame["user"] == user) & (frame["split"] == "train")].iloc[1 : 1 + count]
    assert len(rows) == count and rows["history_items"].map(len).nunique() > 1  # histories differ
    return rows


@pytest.mark.parametrize("with_vectors", [True, False])
def test_packed_answer_logits_equal_each_targets_own_prompt_on_the_anchor_history(setup, with_vectors):
    rec, _, frame, _ = setup
    packs, expected = [], []
    for user in (0, 1, 2):
        rows = _user_rows(frame, user, 4)
        packs.append(Pack(_encode(setup, rows, with_vectors)))
        alone = _encode(setup, _on_anchor_history(rows), with_vectors)
        with torch.no_grad():
            expected.append(yes_logits(rec, collate(alone, rec.pad_id, with_answers=False)).numpy())
    batch = collate_packs(packs, rec.pad_id)
    assert batch.segments is not None and batch.labels.shape[0] == 12
    with torch.no_grad():
        hidden = rec.hidden_states(batch)
        rows, positions = batch.answers
        packed = rec.answer_logit(hidden[rows, positions]).numpy()
    np.testing.assert_allclose(packed, np.concatenate(expected), rtol=TOLERANCE, atol=TOLERANCE)
    assert np.std(packed) > 1e-3  # the targets differ, and so do their logits
    assert batch.input_ids.shape[1] < sum(len(e.prompt_ids) + len(e.answer_ids) for p in packs[:1] for e in p.targets)


def test_packed_loss_equals_the_mean_of_single_row_losses_on_the_anchor_history(setup):
    rec, _, frame, _ = setup
    rows = _user_rows(frame, 3, 4)
    params = LossParams(bce_weight_single=0.7, bce_weight_multi=0.1)
    with torch.no_grad():
        pack = collate_packs([Pack(_encode(setup, rows))], rec.pad_id)
        packed, _ = rec_loss(rec.hidden_states(pack), rec, pack, params)
        alone = collate(_encode(setup, _on_anchor_history(rows)), rec.pad_id, with_answers=True)
        unpacked, _ = rec_loss(rec.hidden_states(alone), rec, alone, params)
    assert abs(float(packed) - float(unpacked)) < TOLERANCE


def test_a_pack_of_one_row_is_todays_loss_computed_by_hand(setup):
    rec, _, frame, _ = setup
    examples = _encode(setup, frame.iloc[10:14])
    params = LossParams(bce_weight_single=0.9, bce_weight_multi=0.1)
    batch = collate_packs(singletons(examples), rec.pad_id)
    assert batch.segments is None and batch.position_ids is None  # the plain causal path
    with torch.no_grad():
        loss, _ = rec_loss(rec.hidden_states(batch), rec, batch, params)
        by_hand = []
        for example in examples:  # one row at a time: full logits, BCE on Yes - No, CE on the answer
            alone = collate([example], rec.pad_id, with_answers=True)
            logits = rec.llm(inputs_embeds=rec.input_embeddings(alone)).logits[0].float()  # (T, V)
            start = len(example.prompt_ids) - 1
            margin = logits[start, rec.yes_id] - logits[start, rec.no_id]
            bce = F.binary_cross_entropy_with_logits(margin, torch.tensor(float(example.label)))
            ce = F.cross_entropy(logits[start : start + len(example.answer_ids)], torch.tensor(example.answer_ids))
            by_hand.append(0.9 * bce + 0.1 * ce)
    assert abs(float(loss) - float(torch.stack(by_hand).mean())) < TOLERANCE


def test_gradients_reach_the_shared_prefix(setup):
    rec, _, frame, _ = setup
    batch = collate_packs([Pack(_encode(setup, _user_rows(frame, 0, 3)))], rec.pad_id)
    embeds = rec.input_embeddings(batch).detach().requires_grad_(True)
    mask = packed_attention_mask(batch.segments)
    hidden = rec.body(inputs_embeds=embeds, attention_mask=mask, position_ids=batch.position_ids).last_hidden_state
    rows, positions = batch.answers
    rec.answer_logit(hidden[rows, positions])[-1].backward()  # the last target's logit only
    grad = embeds.grad[0].norm(dim=-1)
    segments = batch.segments[0]
    assert float(grad[segments == 0].sum()) > 0  # it reads the shared prefix
    assert float(grad[segments == 1].sum()) == 0 and float(grad[segments == 2].sum()) == 0  # not other targets


def test_segment_mask_lets_a_target_see_the_prefix_and_itself_only():
    segments = torch.tensor([[0, 0, 1, 1, 2, 2, -1]])
    mask = packed_attention_mask(segments)[0, 0]
    assert mask[3].tolist() == [True, True, True, True, False, False, False]
    assert mask[5].tolist() == [True, True, False, False, True, True, False]
    assert mask[1].tolist() == [True, True, False, False, False, False, False]
    assert mask[6, 6] and mask[6].sum() == 1  # padding sees only itself (never an empty row)


def _interactions(users, times):
    return pd.DataFrame({"row": range(len(users)), "user": users, "timestamp": times})


def test_blocks_keep_one_user_the_size_limit_and_the_time_span():
    frame = _interactions([0, 0, 0, 0, 0, 1, 1, 1], [10, 10, 11, 500, 501, 7, 8, 9])
    assert label_blocks(frame, targets=3, max_span_seconds=60) == [[0, 1, 2], [3, 4], [5, 6, 7]]
    assert label_blocks(frame, targets=2, max_span_seconds=1000) == [[0, 1], [2, 3], [4], [5, 6], [7]]
    assert label_blocks(frame, targets=1, max_span_seconds=60) == [[r] for r in range(8)]


def test_stage_shares_are_disjoint_exact_and_seeded():
    blocks = [[i * 3, i * 3 + 1, i * 3 + 2] for i in range(20)]
    first, second = disjoint_shares(blocks, [16, 25], seed=4)
    rows_first, rows_second = [r for b in first for r in b], [r for b in second for r in b]
    assert len(rows_first) == 16 and len(rows_second) == 25
    assert not set(rows_first) & set(rows_second)
    assert disjoint_shares(blocks, [16, 25], seed=4) == [first, second]
    assert disjoint_shares(blocks, [16, 25], seed=5) != [first, second]
    with pytest.raises(ValueError, match="ask for 61"):
        disjoint_shares(blocks, [30, 31], seed=4)


def test_trace_batches_are_added_and_the_label_batches_keep_their_order(setup):
    examples = _encode(setup, setup[2].iloc[:24])
    packs = [Pack(examples[i : i + 2]) for i in range(0, 24, 2) if examples[i].user == examples[i + 1].user]
    packs = packs or singletons(examples)
    traces = singletons(examples[:3])
    labels = label_batches(packs, 2, None, np.random.default_rng(9))
    plain = with_extras(labels, {"reasoning": (traces, 0.0)}, 2, np.random.default_rng([9, 1]))
    mixed = with_extras(labels, {"reasoning": (traces, 0.2)}, 2, np.random.default_rng([9, 1]))
    label_only = [m.packs for m in mixed if m.kind == "labels"]
    assert label_only == [m.packs for m in plain] == labels
    assert sum(m.kind == "reasoning" for m in mixed) == round(len(labels) * 0.2 / 0.8) > 0
    assert sum(len(b) for b in labels) == len(packs)  # one pass: every pack once
