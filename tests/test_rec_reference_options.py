"""The reference recipe's training options on tiny data (issue 34): epochs with per-epoch validation,
the best checkpoint and early stopping; the reference's learning rate under epochs; stage 2 on stage
1's rows; each model's own CF slots (CoLLM: user + target). And the defaults: the schedule, the
learning rates, the rows and the prompts the code gave before these options (the `_before_*`
helpers are the bodies of the functions at 0ecf651)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

import rec_tiny
from params_base import section
from pipeline import schemas
from pipeline.artifacts import read_frame
from pipeline.errors import BadParams
from pipeline.params import invalid_keys
from pipeline.rec.examples import ITEM_SLOT, USER_SLOT, CFVectors, build_catalog, build_examples, dense_vectors
from pipeline.rec.losses import LossParams
from pipeline.rec.model import LoraParams, build_rec_model, trainable_state
from pipeline.rec.packing import label_blocks, packs_of, singletons
from pipeline.rec.params import PromptParams, RecParams, TrainParams
from pipeline.rec.prompts import SLOT, PromptItem, get_template, render_prompt
from pipeline.rec.recipe import check_cf_slots, stage_blocks
from pipeline.rec.training import (LoopParams, cosine_with_warmup, label_batches, label_rows, train_rec_model,
                                   training_schedule, with_extras)
from pipeline.sizes import train_shares


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(root, model with a trainable LoRA, CF vectors, interactions, catalog) on the tiny artifacts."""
    root = tmp_path_factory.mktemp("reference")
    rec_tiny.write_tiny_model(root / "tiny")
    rec_tiny.write_tiny_artifacts(root)
    vectors = CFVectors(dense_vectors(read_frame(root / "data/cf/mf/user_vectors.parquet"), "user", "u"),
                        dense_vectors(read_frame(root / "data/cf/mf/item_vectors.parquet"), "item", "i"))
    frame = read_frame(root / "data/ingest/interactions.parquet", schemas.INTERACTIONS)
    catalog = build_catalog(read_frame(root / "data/ingest/items.parquet"), None, 3, 0)
    return root, vectors, frame, catalog


def _model(root):
    torch.manual_seed(3)
    lora = LoraParams(**section("rec.lora", layers=None, r=4, alpha=8, dropout=0.0))
    rec = build_rec_model(str(root / "tiny"), lora)
    for name, param in rec.named_parameters():
        param.requires_grad_("lora_" in name)
    return rec


def _train_packs(tiny, rec):
    _, _, frame, catalog = tiny
    train = frame[frame["split"] == "train"]
    examples = build_examples(train, catalog, rec.tokenizer, get_template("v2"), 3, None)
    return packs_of(examples, label_blocks(train, 2, 10)), examples


def _params(**fields) -> TrainParams:
    """rec.stage1 of params.yaml, tiny-sized and fp32, with `fields`."""
    base = {"train_rows": 12, "batch_size": 2, "grad_accum": 1, "lr": 0.05, "weight_decay": 0.0, "warmup_steps": 1,
            "reasoning_share": 0.0, "probe_rows": 2, "dtype": "float32", "seed": 1}
    return TrainParams(**section("rec.stage1", **{**base, **fields}))


def _loss() -> LossParams:
    return LossParams(**section("rec.loss"))


# --- epochs, validation after each, the best checkpoint, early stopping ---

def test_epochs_stop_after_patience_validations_without_a_new_best_and_keep_the_best(tiny):
    rec = _model(tiny[0])
    packs, _ = _train_packs(tiny, rec)
    values, states = [0.3, 0.6, 0.5, 0.4, 0.9, 0.95], []

    def validate() -> float:
        states.append(trainable_state(rec))
        return values[len(states) - 1]

    params = _params(epochs=6, steps_per_epoch=2, patience=2)
    log, trained = train_rec_model(rec, packs, [], params, _loss(), validate)
    # epochs 3 and 4 bring no new best: the run stops after epoch 4, never seeing 0.9
    assert [e["epoch"] for e in log["evals"]] == [1, 2, 3, 4] and [e["step"] for e in log["evals"]] == [2, 4, 6, 8]
    assert len(log["steps"]) == 8 and log["epochs"] == {"planned": 6, "steps_per_epoch": 2, "steps_planned": 12,
                                                        "stopped_early": True}
    assert log["best_eval"] == 1 and log["best_step"] == 4
    restored = trainable_state(rec)
    assert all(torch.equal(restored[k], states[1][k]) for k in restored)
    assert not all(torch.equal(restored[k], states[3][k]) for k in restored)
    shape = lambda schedule: [[p.rows for p in m.packs] for m in schedule]  # noqa: E731
    assert shape(trained) == shape(training_schedule(packs, [], params)[:8])  # what was trained, no more


def test_without_patience_every_epoch_runs_and_one_pass_is_an_epoch(tiny):
    rec = _model(tiny[0])
    packs, _ = _train_packs(tiny, rec)
    log, trained = train_rec_model(rec, packs, [], _params(epochs=3), _loss(), lambda: 0.5)
    one_pass = math.ceil(len(packs) / 2)
    assert len(log["steps"]) == 3 * one_pass and len(log["evals"]) == 3
    assert log["epochs"]["stopped_early"] is False and log["best_eval"] == 2  # ties: the latest
    # each epoch holds every pack once (passes reshuffled): the rows of the run, three times over
    assert sorted(label_rows(trained)) == sorted(3 * [row for p in packs for row in p.rows])


def test_an_override_is_checked_against_the_stage_it_can_belong_to():
    """A stage-2 variant's override valid only on rec.stage2 (epochs there) is accepted; one valid on
    neither section is not."""
    stage2 = {"epochs": 3, "steps": None}
    params = _rec_params(stage2=stage2, overrides={"collm": {"steps_per_epoch": 5}})
    assert params.training("collm", 2).steps_per_epoch == 5 and params.training("collm", 2).epochs == 3
    with pytest.raises(ValidationError) as err:
        _rec_params(overrides={"collm": {"steps_per_epoch": 5}})
    assert invalid_keys("rec", err.value) == "rec.overrides.collm.steps_per_epoch: only with epochs (got 5)"


def test_a_new_best_of_a_watched_metric_also_counts_as_progress(tiny):
    """ThinkRec's rule (runner_base.py:457-479): the counter resets when AUC, UAUC or the mix reaches
    a new best; the checkpoint follows the mix (the first value) alone."""
    rec = _model(tiny[0])
    packs, _ = _train_packs(tiny, rec)
    results = iter([(0.5, 0.6, 0.4), (0.4, 0.7, 0.3), (0.3, 0.5, 0.3), (0.2, 0.5, 0.3)])
    log, _ = train_rec_model(rec, packs, [], _params(epochs=4, steps_per_epoch=1, patience=1), _loss(),
                             lambda: next(results))
    assert len(log["evals"]) == 3 and log["best_eval"] == 0  # epoch 2's AUC kept it going, epoch 3 stopped it
    mix_only = iter([0.5, 0.4, 0.3, 0.2])
    log, _ = train_rec_model(_model(tiny[0]), packs, [], _params(epochs=4, steps_per_epoch=1, patience=1), _loss(),
                             lambda: next(mix_only))
    assert len(log["evals"]) == 2


def test_patience_also_stops_a_single_schedule_validated_every_few_steps(tiny):
    rec = _model(tiny[0])
    packs, _ = _train_packs(tiny, rec)
    values = iter([0.2, 0.1, 0.1, 0.9])
    log, _ = train_rec_model(rec, packs, [], _params(steps=8, eval_every=2, patience=2), _loss(), lambda: next(values))
    assert [e["step"] for e in log["evals"]] == [2, 4, 6] and len(log["steps"]) == 6 and "epoch" not in log["evals"][0]


@pytest.mark.parametrize("fields, words", [
    ({"epochs": 2, "steps": 4}, "rec.stage1.steps: not with epochs"),
    ({"epochs": 2, "eval_every": 3}, "rec.stage1.eval_every: not with epochs"),
    ({"steps_per_epoch": 5}, "rec.stage1.steps_per_epoch: only with epochs"),
    ({"warmup_lr": 1e-5}, "rec.stage1.warmup_lr: only with epochs"),
    ({"patience": 3}, "rec.stage1.patience: needs validations (epochs, or eval_every > 0)"),
    ({"min_lr": 1.0}, "rec.stage1.min_lr: above lr"),
])
def test_schedule_keys_that_do_not_go_together_are_named(fields, words):
    with pytest.raises(ValidationError) as err:
        _params(**fields)
    assert words in invalid_keys("rec.stage1", err.value)


def test_a_min_lr_above_lr_is_taken_under_epochs():
    """The reference's cosine runs from lr to min_lr, rising when min_lr is the higher (ThinkRec's
    stage 3: init_lr 1e-5, min_lr 8e-5): only the epochs' schedule is the reference's."""
    assert _params(epochs=2, min_lr=1.0).min_lr == 1.0


# --- the learning rate ---

def test_the_learning_rate_under_epochs_is_the_references_linear_warmup_cosine():
    """optims.py:81-113 with ThinkRec's stage-1 values: lr 1e-4, min_lr 8e-5, warmup_lr 1e-5,
    warmup 200, 50 epochs of 800 steps; and CoLLM's warmup 200 at 50 steps per epoch."""
    thinkrec = LoopParams(1e-4, 0.0, 200, 1, "float32", 0, epochs=50, min_lr=8e-5, warmup_lr=1e-5)
    lr = lambda params, steps, t: params.lr * params.lr_factor(steps)(t)  # noqa: E731
    cosine = lambda t: 8e-5 + 2e-5 * 0.5 * (1 + math.cos(math.pi * t / 40_000))  # noqa: E731
    expected = {0: 1e-5, 100: 1e-5 + 9e-5 * 100 / 200, 199: 1e-5 + 9e-5 * 199 / 200, 200: cosine(200),
                20_000: 9e-5, 39_999: cosine(39_999)}
    for step, value in expected.items():
        assert lr(thinkrec, 40_000, step) == pytest.approx(value, rel=1e-12, abs=0), step
    assert lr(thinkrec, 40_000, 200) < 1e-4  # the cosine runs from step 0, not from the warmup's end
    collm = LoopParams(1e-3, 0.0, 200, 1, "float32", 0, epochs=200, min_lr=8e-5, warmup_lr=1e-5)
    ramp = [lr(collm, 10_000, t) for t in (0, 49, 50, 199, 200)]
    assert ramp[:4] == pytest.approx([1e-5, 1e-5 + 99e-5 * 49 / 200, 1e-5, 1e-5 + 99e-5 * 49 / 200], rel=1e-12)
    assert ramp[4] == pytest.approx(8e-5 + 92e-5 * 0.5 * (1 + math.cos(math.pi * 200 / 10_000)), rel=1e-12)
    no_ramp = LoopParams(1e-4, 0.0, 200, 1, "float32", 0, epochs=50, min_lr=8e-5)  # warmup_lr None: lr
    assert lr(no_ramp, 40_000, 0) == pytest.approx(1e-4, rel=1e-12)


def test_the_training_log_shows_the_documented_rates(tiny):
    """log["steps"][k]["lr"] is the rate after step k + 1, i.e. of step k + 1 (0-based), as before."""
    rec = _model(tiny[0])
    packs, _ = _train_packs(tiny, rec)
    params = _params(epochs=2, steps_per_epoch=3, warmup_steps=2, lr=0.01, min_lr=0.001, warmup_lr=0.002)
    log, _ = train_rec_model(rec, packs, [], params, _loss(), lambda: 0.0)
    cosine = lambda t: 0.001 + 0.009 * 0.5 * (1 + math.cos(math.pi * t / 6))  # noqa: E731
    expected = [0.002 + 0.008 * 1 / 2, cosine(2), cosine(3), cosine(4), cosine(5), cosine(6)]
    assert [s["lr"] for s in log["steps"]] == pytest.approx(expected, rel=1e-12)


def _before_cosine(warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return factor


def test_the_default_learning_rates_are_the_ones_before_bit_for_bit():
    default = TrainParams(**section("rec.stage1"))
    assert default.epochs is None and default.min_lr == 0.0
    for total in (1, 9, 224, 449):
        loop = LoopParams(default.lr, default.weight_decay, default.warmup_steps, 1, "float32", 0)
        new, before = loop.lr_factor(total), _before_cosine(default.warmup_steps, total)
        assert [new(t) for t in range(total + 2)] == [before(t) for t in range(total + 2)]
        assert cosine_with_warmup(default.warmup_steps, total)(total // 2) == before(total // 2)


# --- the default schedule ---

def _before_schedule(packs, traces, params):
    count = params.steps * params.grad_accum if params.steps is not None else None
    labels = label_batches(packs, params.batch_size, count, np.random.default_rng(params.seed))
    extras = {"reasoning": (traces, params.reasoning_share)}
    return with_extras(labels, extras, params.batch_size, np.random.default_rng([params.seed, 1]))


@pytest.mark.parametrize("fields", [{}, {"steps": 5, "grad_accum": 2}, {"reasoning_share": 0.3}])
def test_the_default_schedule_is_the_one_before(tiny, fields):
    rec = _model(tiny[0])
    packs, examples = _train_packs(tiny, rec)
    params = _params(**fields)
    shape = lambda schedule: [(m.kind, [p.rows for p in m.packs]) for m in schedule]  # noqa: E731
    traces = singletons(examples[:4])
    assert shape(training_schedule(packs, traces, params)) == shape(_before_schedule(packs, traces, params))


# --- both stages on the same rows ---

def _rec_params(**stages) -> RecParams:
    return RecParams.model_validate(section("rec", **stages))


def test_same_rows_give_stage_2_exactly_stage_1s_rows_and_leave_stage_1_as_it_was(tiny):
    frame = tiny[2]
    disjoint = _rec_params(stage1={"train_rows": 12}, stage2={"train_rows": 9})
    same = _rec_params(stage1={"train_rows": 12}, stage2={"train_rows": "same"})
    assert stage_blocks(frame, same, 2) == stage_blocks(frame, same, 1) == stage_blocks(frame, disjoint, 1)
    assert sum(map(len, stage_blocks(frame, same, 2))) == 12
    whole = _rec_params(stage1={"train_rows": "all"}, stage2={"train_rows": "same"})  # the reference's
    rows = sorted(row for block in stage_blocks(frame, whole, 2) for row in block)
    assert rows == sorted(frame.loc[frame["split"] == "train", "row"]) and train_shares("all", "same", 30) == (30, 30)


def test_same_is_for_stage_2_only():
    with pytest.raises(ValueError, match="stage1.train_rows: 'same' is for stage2.train_rows only"):
        _rec_params(stage1={"train_rows": "same"})
    with pytest.raises(BadParams, match="^rec.stage1.train_rows: 'same' is for rec.stage2.train_rows only"):
        train_shares("same", "same", 30)


# --- each model's own CF slots ---

def test_collm_without_history_slots_has_the_user_and_target_slots_and_the_same_text(tiny):
    root, vectors, frame, catalog = tiny
    rec = _model(root)
    rows = frame.iloc[20:26]
    prompt = PromptParams(**section("rec.prompt", cf_slots={"collm": ["target", "user"]}))
    assert prompt.slots("collm") == ("user", "target") and prompt.slots("thinkrec") == ("user", "history", "target")
    full = build_examples(rows, catalog, rec.tokenizer, get_template("v2"), 3, vectors)
    collm = build_examples(rows, catalog, rec.tokenizer, get_template("v2"), 3, vectors, slots=prompt.slots("collm"))
    for a, b, (_, row) in zip(full, collm, rows.iterrows()):
        history = len(row["history_items"][-3:])
        assert len(a.slot_positions) == 1 + history + 1 and history > 0
        assert len(b.slot_positions) == 2 and b.slot_kinds == [USER_SLOT, ITEM_SLOT]
        np.testing.assert_array_equal(b.slot_vectors, a.slot_vectors[[0, -1]])  # the user's and the target's
        text = lambda e: rec.tokenizer.decode([t for i, t in enumerate(e.prompt_ids) if i not in e.slot_positions])  # noqa: E731
        assert text(a) == text(b)
    history = [(PromptItem("Heat", ("crime",)), 1), (PromptItem("Babe"), 0)]
    _, all_slots = render_prompt(get_template("v2"), history, PromptItem("Fargo"), True)
    _, two = render_prompt(get_template("v2"), history, PromptItem("Fargo"), True, slots=("user", "target"))
    assert two.count(SLOT) == 2 and all_slots.count(SLOT) == 4
    assert two.splitlines()[0] == f"User{SLOT}. Items rated before, oldest first:" and two.endswith(f"Fargo{SLOT}")
    assert two.replace(SLOT, "") == all_slots.replace(SLOT, "")


@pytest.mark.parametrize("cf_slots, words", [
    ({"collm": []}, "cf_slots.collm: one or more of"),
    ({"collm": ["user", "user"]}, "cf_slots.collm: one or more of"),
    ({"collm": ["items"]}, "cf_slots.collm.0"),
])
def test_cf_slots_are_slot_kinds(cf_slots, words):
    with pytest.raises(ValidationError) as err:
        PromptParams(**section("rec.prompt", cf_slots=cf_slots))
    assert words in invalid_keys("rec.prompt", err.value)


@pytest.mark.parametrize("variant", ["colm", "tallrec"])
def test_cf_slots_name_stage_2_variants_of_the_registry(variant):
    """Checked where a stage-2 variant trains (the params models do not import the registry)."""
    check_cf_slots(PromptParams(**section("rec.prompt", cf_slots={"collm": ["user", "target"]})))
    with pytest.raises(BadParams, match=rf"^rec.prompt.cf_slots: \['{variant}'\] are not stage-2 variants"):
        check_cf_slots(PromptParams(**section("rec.prompt", cf_slots={variant: ["user"]})))


def test_the_variant_encoder_gives_each_variant_its_own_slots(tiny):
    """Every consumer (training, scoring, explain, experts, gate, recommend) encodes through it."""
    from pipeline.rec.data import VariantData, variant_encoder
    from pipeline.rec.variants import get_variant

    root, vectors, frame, _ = tiny
    rec = _model(root)
    data = VariantData(frame, read_frame(root / "data/ingest/items.parquet"),
                       read_frame(root / "data/ingest/subsets.parquet"), vectors, None, {}, None)
    prompt = PromptParams(**section("rec.prompt", cf_slots={"collm": ["user", "target"]}))
    rows = frame.iloc[20:24]
    collm = variant_encoder(get_variant("collm"), prompt, rec.tokenizer, data)(rows)
    thinkrec = variant_encoder(get_variant("thinkrec_no_traces"), prompt, rec.tokenizer, data)(rows)
    assert {len(e.slot_positions) for e in collm} == {2} and {len(e.slot_positions) for e in thinkrec} == {5}


def test_the_default_prompt_has_every_slot_kind_for_every_stage_2_variant():
    prompt = PromptParams(**section("rec.prompt"))
    assert prompt.cf_slots == {}
    assert {prompt.slots(v) for v in ("collm", "thinkrec", "thinkrec_no_traces")} == {("user", "history", "target")}


def test_an_epoch_run_of_both_stages_on_the_same_rows_through_the_stage(tmp_path, monkeypatch, capsys):
    """stages.train_rec: tallrec for up to 3 epochs with patience 1, then collm on its rows; the log
    and the metrics agree with the stopping rule and the checkpoint choice they record."""
    from stages.rec_stage import run_rec_stage

    rec_tiny.write_tiny_model(tmp_path / "tiny")
    rec_tiny.write_tiny_artifacts(tmp_path)
    params = rec_tiny.tiny_params(tmp_path / "tiny")
    epochs = {"steps": None, "epochs": 3, "steps_per_epoch": 1, "patience": 1, "min_lr": 0.001, "warmup_lr": 0.002}
    params["rec"]["stage1"].update(epochs)
    params["rec"]["stage2"].update(train_rows="same", steps=None)
    rec_tiny.write_params(tmp_path, params)
    monkeypatch.chdir(tmp_path)
    log = run_rec_stage("tallrec")["log"]
    assert ("stopped early (3 planned)" in capsys.readouterr().out) == log["epochs"]["stopped_early"]
    selections = [e["selection"] for e in log["evals"]]
    watched = [(e["selection"], e["auc"], e["uauc"]) for e in log["evals"]]  # weighted: all three watched
    improved = [i == 0 or any(v > max(w[k] for w in watched[:i]) for k, v in enumerate(watched[i])) for i in range(len(watched))]
    assert len(log["evals"]) == (3 if improved[1] else 2) and log["epochs"]["stopped_early"] == (not improved[1])
    best = max(range(len(selections)), key=lambda i: (selections[i], i))
    metrics = json.loads((tmp_path / "metrics/tallrec_train.json").read_text())
    assert log["best_eval"] == best and metrics["best_step"] == log["best_step"] == best + 1  # 1 step per epoch
    assert metrics["valid_small"]["selection"] == pytest.approx(selections[best])
    collm = run_rec_stage("collm")  # one pass over stage 1's packs
    share = stage_blocks(read_frame(tmp_path / "data/ingest/interactions.parquet"), RecParams(**params["rec"]), 1)
    assert collm["log"]["train_rows"] == sorted(row for block in share for row in block)
    assert collm["metrics"]["stage1_overlap"] == len(log["train_rows"]) == 15  # an epoch's step (4 x 2 packs) is a pass
