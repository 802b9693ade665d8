"""Soft tokens, one-pass scoring and the loss on a tiny randomly initialised Llama."""
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
from pipeline.rec.batching import collate, length_buckets
from pipeline.rec.examples import CFVectors, build_catalog, build_examples, dense_vectors, topn_frame
from pipeline.rec.losses import LossParams, rec_loss
from pipeline.rec.model import LoraParams, build_rec_model, trainable_state
from pipeline.rec.prompts import get_template
from pipeline.rec.scoring import generation_inputs, score_examples
from pipeline.rec.packing import singletons
from pipeline.rec.training import TrainParams, train_rec_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("rec")
    rec_tiny.write_tiny_model(root / "tiny")
    rec_tiny.write_tiny_artifacts(root)
    return root


def _model_and_examples(root, with_cf: bool, traces=None, answer_logit="yes_minus_no"):
    torch.manual_seed(3)
    ingest = root / "data/ingest"
    frame = read_frame(ingest / "interactions.parquet", schemas.INTERACTIONS)
    items = read_frame(ingest / "items.parquet", schemas.ITEMS)
    vectors = None
    if with_cf:
        users = dense_vectors(read_frame(root / "data/cf/mf/user_vectors.parquet"), "user", "users")
        item_table = dense_vectors(read_frame(root / "data/cf/mf/item_vectors.parquet"), "item", "items")
        vectors = CFVectors(users, item_table)
    lora = LoraParams(**section("rec.lora", layers=None, r=4, alpha=8, dropout=0.0))
    rec = build_rec_model(str(root / "tiny"), lora, cf_dim=rec_tiny.CF_DIM if with_cf else None,
                          projector_expansion=2, answer_logit=answer_logit)
    # random LoRA B (peft starts it at zero) so the adapter really changes the logits under test
    for name, param in rec.llm.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)
    rec.eval()
    catalog = build_catalog(items, None, title_words=3, keywords_per_item=0)
    examples = build_examples(frame.iloc[10:22], catalog, rec.tokenizer, get_template("v2"), 3, vectors, traces)
    return rec, examples


def test_projector_writes_cf_vectors_into_exactly_the_placeholder_positions(tiny):
    rec, examples = _model_and_examples(tiny, with_cf=True)
    batch = collate(examples, rec.pad_id, with_answers=False)
    with torch.no_grad():
        embeds = rec.input_embeddings(batch)
        plain = rec.llm.get_input_embeddings()(batch.input_ids)
        projected = rec.projector(batch.slot_vectors)
    slot_mask = torch.zeros(batch.input_ids.shape, dtype=torch.bool)
    slot_mask[batch.slot_batch, batch.slot_position] = True
    # user + the last (at most 3) history items + target per row
    frame = read_frame(tiny / "data/ingest/interactions.parquet").iloc[10:22]
    assert slot_mask.sum(dim=1).tolist() == [2 + min(3, len(h)) for h in frame["history_items"]]
    assert (batch.input_ids[slot_mask] == rec.pad_id).all()
    assert torch.equal(embeds[~slot_mask], plain[~slot_mask])
    assert torch.allclose(embeds[slot_mask], projected)
    assert not torch.allclose(plain[slot_mask], projected)
    # the first slot of each row carries the user's vector, the last the target item's
    first = examples[0]
    np.testing.assert_array_equal(first.slot_vectors[0], dense_vectors(
        read_frame(tiny / "data/cf/mf/user_vectors.parquet"), "user", "u")[first.user])
    np.testing.assert_array_equal(first.slot_vectors[-1], dense_vectors(
        read_frame(tiny / "data/cf/mf/item_vectors.parquet"), "item", "i")[first.item])


@pytest.mark.parametrize(("with_cf", "answer_logit"), [(False, "yes"), (True, "yes"), (True, "yes_minus_no")])
def test_one_pass_score_equals_first_step_yes_logit_of_generate(tiny, with_cf, answer_logit):
    rec, examples = _model_and_examples(tiny, with_cf=with_cf, answer_logit=answer_logit)
    examples = examples[::3]  # 4 rows of different lengths; generate() costs ~1 s a call
    scores = score_examples(rec, examples, batch_size=3, dtype="float32")  # right padding, 2 batches
    expected = []
    with torch.no_grad():
        for example in examples:
            inputs = generation_inputs(rec, [example])
            out = rec.llm.generate(**inputs, max_new_tokens=1, do_sample=False, output_logits=True,
                                   return_dict_in_generate=True, pad_token_id=rec.pad_id)
            first_step = out.logits[0][0]  # (V,) raw logits of the first generated token
            no = first_step[rec.no_id] if answer_logit == "yes_minus_no" else 0.0
            expected.append(float(first_step[rec.yes_id] - no))
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)
    assert np.std(scores) > 1e-3  # different prompts, different scores


def test_left_padded_generation_inputs_match_one_pass_scores(tiny):
    rec, examples = _model_and_examples(tiny, with_cf=True)
    with torch.no_grad():
        out = rec.llm.generate(**generation_inputs(rec, examples), max_new_tokens=1, do_sample=False,
                               output_logits=True, return_dict_in_generate=True, pad_token_id=rec.pad_id)
    first_step = out.logits[0]
    np.testing.assert_allclose((first_step[:, rec.yes_id] - first_step[:, rec.no_id]).numpy(),
                               score_examples(rec, examples, 16, "float32"), rtol=1e-4, atol=1e-4)


def test_loss_matches_full_logit_computation_with_length_weights(tiny):
    frame = read_frame(tiny / "data/ingest/interactions.parquet")
    traces = {int(r): "Yes. The user liked similar stories." for r in frame["row"].iloc[10:13]}
    rec, examples = _model_and_examples(tiny, with_cf=True, traces=traces)
    batch = collate(examples, rec.pad_id, with_answers=True)
    params = LossParams(bce_weight_single=0.8, bce_weight_multi=0.3)
    with torch.no_grad():
        loss, _ = rec_loss(rec.hidden_states(batch), rec, batch, params)
        logits = rec.llm(inputs_embeds=rec.input_embeddings(batch), attention_mask=batch.attention_mask).logits
    manual = []
    for b, example in enumerate(examples):
        start = len(example.prompt_ids)
        answer_logits = logits[b, start - 1 : start - 1 + len(example.answer_ids)]
        lm = F.cross_entropy(answer_logits, torch.tensor(example.answer_ids))
        yes_minus_no = logits[b, start - 1, rec.yes_id] - logits[b, start - 1, rec.no_id]
        bce = F.binary_cross_entropy_with_logits(yes_minus_no, torch.tensor(float(example.label)))
        w = 0.3 if example.row in traces else 0.8
        manual.append(w * bce + (1 - w) * lm)
    assert sum(e.reasoning for e in examples) == 3
    assert float(loss) == pytest.approx(float(torch.stack(manual).mean()), rel=1e-5)


def test_answer_logits_stay_fp32_under_bf16_autocast(tiny):
    """A logit near 15 in bf16 moves in steps of 0.0625: the answer head must not round to that."""
    rec, _ = _model_and_examples(tiny, with_cf=False, answer_logit="yes")
    hidden = torch.randn(64, rec.lm_head.weight.shape[1])
    yes_row = rec.lm_head.weight[rec.yes_id].detach()
    hidden = hidden + 15 * yes_row / yes_row.norm() ** 2  # every logit lands near +15
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = rec.answer_logit(hidden)
    assert scores.dtype == torch.float32
    expected = hidden.double() @ rec.lm_head.weight[rec.yes_id].double()
    np.testing.assert_allclose(scores.numpy(), expected.numpy(), atol=1e-4)
    assert len(np.unique(scores.numpy())) == 64  # bf16 rounding would tie most of them


def test_user_slot_shows_the_row_state_of_a_sequential_cf_model(tiny):
    frame = read_frame(tiny / "data/ingest/interactions.parquet", schemas.INTERACTIONS)
    users = np.zeros((6, 4), dtype=np.float32)
    items = np.ones((8, 4), dtype=np.float32)
    rows = frame["row"].to_numpy()[::2]  # states for every other row
    states = np.arange(len(rows) * 4, dtype=np.float32).reshape(len(rows), 4) + 100
    vectors = CFVectors(users, items, states, np.sort(rows))
    catalog = build_catalog(read_frame(tiny / "data/ingest/items.parquet"), None, 3, 0)
    rec_tokenizer = _model_and_examples(tiny, with_cf=False)[0].tokenizer
    examples = build_examples(frame.iloc[10:14], catalog, rec_tokenizer, get_template("v2"), 3, vectors)
    for example in examples:
        expected = states[np.searchsorted(np.sort(rows), example.row)] if example.row in set(rows) else users[example.user]
        np.testing.assert_array_equal(example.slot_vectors[0], expected)  # the user slot
        np.testing.assert_array_equal(example.slot_vectors[-1], items[example.item])
    candidates = pd.DataFrame({"user": [frame["user"].iloc[10]] * 2, "item": [1, 2], "positive": [1, 0],
                               "row": [int(frame["row"].iloc[10])] * 2})
    topn = build_examples(topn_frame(candidates, frame), catalog, rec_tokenizer, get_template("v2"), 3, vectors)
    assert [e.row for e in topn] == [-1, -1]  # candidates, but with the positive row's user state
    positive_row = int(frame["row"].iloc[10])  # an even row: it has a state
    np.testing.assert_array_equal(topn[0].slot_vectors[0], states[np.searchsorted(rows, positive_row)])


def test_length_buckets_group_similar_lengths_and_cover_every_row():
    lengths = [5, 50, 6, 51, 7, 52, 8, 53]
    batches = length_buckets(lengths, 2, np.random.default_rng(0))
    assert sorted(i for b in batches for i in b) == list(range(8))
    assert all(max(lengths[i] for i in b) - min(lengths[i] for i in b) <= 1 for b in batches)
    assert length_buckets(lengths, 4) == [[0, 2, 4, 6], [1, 3, 5, 7]]


def test_missing_cf_vector_names_the_id():
    frame = pd.DataFrame({"item": [0, 2], "vector": [[1.0, 2.0], [3.0, 4.0]]})
    with pytest.raises(ValueError, match=r"items.parquet: no vector for item \[1\]"):
        dense_vectors(frame, "item", "items.parquet")


@pytest.mark.parametrize(
    "values, expected", [([0.2, 0.7, 0.7, float("nan")], 2), ([float("nan")] * 3, 2), ([0.9, 0.1, 0.5], 0)]
)
def test_training_restores_and_reports_the_same_evaluation(tiny, values, expected):
    rec, examples = _model_and_examples(tiny, with_cf=False)
    for name, param in rec.named_parameters():
        param.requires_grad_("lora_" in name)
    states = []

    def validate() -> float:
        states.append(trainable_state(rec))
        return values[len(states) - 1]

    params = TrainParams(train_rows=12, steps=len(values), batch_size=4, grad_accum=1, lr=0.05, weight_decay=0.0,
                         warmup_steps=1, reasoning_share=0.0, eval_every=1, probe_rows=2, dtype="float32", seed=1,
                         epochs=None, steps_per_epoch=None, patience=None, min_lr=0.0, warmup_lr=None)
    log, _ = train_rec_model(rec, singletons(examples), [], params, LossParams(**section("rec.loss")), validate)
    assert log["best_eval"] == expected and log["best_step"] == expected + 1
    restored = trainable_state(rec)
    assert all(torch.equal(restored[k], states[expected][k]) for k in restored)
    other = 1 if expected != 1 else 0
    assert not all(torch.equal(restored[k], states[other][k]) for k in restored)


def test_validation_time_is_reported_apart_from_training_time(tiny):
    """train_seconds (tokens/s is computed from it) leaves out the validate calls."""
    import time

    rec, examples = _model_and_examples(tiny, with_cf=False)
    for name, param in rec.named_parameters():
        param.requires_grad_("lora_" in name)
    params = TrainParams(train_rows=12, steps=3, batch_size=4, grad_accum=1, lr=0.05, weight_decay=0.0,
                         warmup_steps=1, reasoning_share=0.0, eval_every=1, probe_rows=2, dtype="float32", seed=1,
                         epochs=None, steps_per_epoch=None, patience=None, min_lr=0.0, warmup_lr=None)
    started = time.perf_counter()
    log, _ = train_rec_model(rec, singletons(examples), [], params, LossParams(**section("rec.loss")), lambda: time.sleep(0.4) or 0.5)
    wall = time.perf_counter() - started
    assert len(log["evals"]) == 3 and log["validation_seconds"] >= 1.2
    assert 0 < log["train_seconds"] <= wall - log["validation_seconds"]


SAVE_ADAPTER = """
import sys, torch
from pathlib import Path
from pipeline.rec.model import LoraParams, build_rec_model, save_rec_model
torch.manual_seed(0)
lora = LoraParams(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj", "k_proj", "o_proj"], layers=None)
rec = build_rec_model(sys.argv[1], lora)
save_rec_model(rec, Path(sys.argv[2]))
"""


def test_saved_adapter_bytes_do_not_depend_on_the_process_hash_seed(tiny, tmp_path):
    """peft keeps target_modules in a set; written as is, two processes order it differently."""
    import os
    import subprocess
    import sys

    outputs = []
    for seed in ("1", "2", "3"):
        out = tmp_path / f"seed{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-c", SAVE_ADAPTER, str(tiny / "tiny"), str(out)], check=True, env=env)
        outputs.append({p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()})
    assert outputs[0].keys() == outputs[1].keys() == outputs[2].keys()
    assert "adapter/adapter_config.json" in outputs[0]
    assert outputs[0] == outputs[1] == outputs[2]


@pytest.mark.parametrize(("layers", "reaches_lowest"), [(None, True), (1, False)])
def test_lora_on_top_layers_only_keeps_backward_out_of_the_lower_layers(tiny, tmp_path, layers, reaches_lowest):
    """rec.lora.layers: LoRA factors only in the top layers, and a text-only (stage-1) step's
    gradient never flows into the layers below them."""
    import json

    from pipeline.rec.model import load_rec_model, save_rec_model

    rec_tiny.write_tiny_model(tmp_path / "deep", layers=3)
    lora = LoraParams(**section("rec.lora", r=4, alpha=8, dropout=0.0, layers=layers))
    rec = build_rec_model(str(tmp_path / "deep"), lora)
    def adapted(model):
        return {int(n.split(".layers.")[1].split(".")[0]) for n, _ in model.llm.named_parameters() if "lora_" in n}

    assert adapted(rec) == ({0, 1, 2} if layers is None else {2})
    _, examples = _model_and_examples(tiny, with_cf=False)
    reached = []  # does autograd record the lowest layer's output (and later back-propagate through it)?

    def record(module, inputs, output):
        reached.append((output[0] if isinstance(output, tuple) else output).requires_grad)

    rec.body.layers[0].register_forward_hook(record)
    batch = collate(examples[:4], rec.pad_id, with_answers=True)
    loss, _ = rec_loss(rec.hidden_states(batch), rec, batch, LossParams(**section("rec.loss")))
    loss.backward()
    assert reached == [reaches_lowest]
    assert all(p.grad is not None for n, p in rec.llm.named_parameters() if "lora_" in n)
    saved = tmp_path / f"saved{layers}"
    save_rec_model(rec, saved)
    config = json.loads((saved / "adapter/adapter_config.json").read_text())
    assert config["layers_to_transform"] == (None if layers is None else [2])
    assert adapted(load_rec_model(str(tmp_path / "deep"), saved)) == adapted(rec)  # stage 2, experts, explain


def test_lora_on_more_layers_than_the_backbone_has_is_an_error(tiny):
    with pytest.raises(ValueError, match="rec.lora.layers: the backbone has 2 layers, got 3"):
        build_rec_model(str(tiny / "tiny"), LoraParams(**section("rec.lora", layers=3)))
