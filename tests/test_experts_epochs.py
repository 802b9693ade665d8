"""experts.train's epochs, as ThinkRec's stage 3 trains an expert (TR train_configs/new/
reason_mf_stage3.yaml; the runner, minigpt4/runners/runner_base.py:457-498): at their defaults an
expert trains one pass and validates nothing, as before; with epochs it scores its cluster's
valid_small rows after each epoch in the model it trains, keeps the best checkpoint by
rec.scoring.selection and stops early by patience. Keys that do not go together, and a cluster whose
valid rows cannot rank checkpoints, are one-line errors naming the key."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import yaml

import rec_tiny
from params_base import section
from pipeline.errors import BadParams
from pipeline.experts.assembly import expert_start
from pipeline.experts.params import ExpertsParams, ExpertTrainParams
from pipeline.experts.training import cluster_validation, train_cluster_expert, train_expert
from pipeline.params import load_section
from pipeline.rec.examples import RecExample
from pipeline.rec.model import build_rec_model, trainable_state
from pipeline.rec.packing import Pack, singletons
from pipeline.rec.params import RecParams
from pipeline.rec.recommender import Recommender, variant_data
from pipeline.rec.selection import selection_metrics
from pipeline.rec.training import label_batches, loop_params, training_schedule, with_extras
from pipeline.rec.variants import get_variant

CLUSTER = {0, 2, 4}  # valid_small: users 0 and 2 liked one row and not another, user 4 one row not liked
ONE_LABEL = {3, 4, 5}  # valid_small: one row each, none liked


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("expert_epochs")
    rec_tiny.write_tiny_model(root / "tiny", layers=4)
    rec_tiny.write_tiny_artifacts(root)
    rec_tiny.write_params(root, rec_tiny.tiny_params(root / "tiny"))
    return root


@pytest.fixture()
def cwd(project, monkeypatch):
    monkeypatch.chdir(project)
    return project


def _recommender(prompt: str = "cf") -> Recommender:
    """What the expert stage loads, with a fresh random LoRA (and projector): ThinkRec's stage-2
    model on CF prompts, or its stage-1 variant on text prompts."""
    params = load_section("rec", RecParams)
    spec = get_variant(expert_start(prompt))
    data = variant_data(spec, traces=True)
    torch.manual_seed(3)
    rec = build_rec_model(params.backbone, params.lora, cf_dim=data.vectors.dim if spec.cf_slots else None,
                          projector_expansion=2)
    for name, parameter in rec.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(parameter, std=0.3)
    rec.requires_grad_(False)
    return Recommender(spec.name, spec, rec.eval(), data, params.prompt, "float32")


def _params(**overrides) -> ExpertTrainParams:
    values = dict(prompt="cf", upper_layers=2, train_rows=12, batch_size=2, lr=0.05, weight_decay=0.0,
                  warmup_steps=0, reasoning_share=0.0, dtype="float32", seed=3)
    return ExpertTrainParams(**section("experts.train", **{**values, **overrides}))


def _train(recommender: Recommender, users: set[int], params: ExpertTrainParams, slot: int = 0):
    rec = load_section("rec", RecParams)
    return train_cluster_expert(recommender, slot, users, params, rec.packing, rec.loss, rec.scoring)


def _record_scoring(monkeypatch, recommender: Recommender) -> list[dict]:
    """Every recommender.score call: the rows it scored, their scores, the model's mode."""
    calls, score = [], recommender.score

    def recorded(examples, *args, **kwargs):
        training = recommender.rec.training
        scores = score(examples, *args, **kwargs)
        calls.append({"rows": sorted(e.row for e in examples), "scores": scores, "training": training,
                      "back_to_training": recommender.rec.training})
        return scores

    monkeypatch.setattr(recommender, "score", recorded)
    return calls


def _valid(recommender: Recommender, users: set[int]) -> list[RecExample]:
    frame = recommender.data.subset("valid_small")
    return recommender.encode(frame[frame["user"].isin(users)])


def _cluster_packs(recommender: Recommender, users: set[int]) -> list[Pack]:
    frame = recommender.data.interactions
    return singletons(recommender.encode(frame[(frame["split"] == "train") & frame["user"].isin(users)]))


# --- the default: one pass, nothing validated ---

def test_the_default_schedule_is_the_one_pass_it_was():
    """experts.train without epochs: the label micro-batches of one pass (rng seed), the traces'
    among them (rng [seed, 1]), as the expert's own schedule drew them before epochs existed."""
    packs = [Pack([RecExample(i, i % 3, i, i % 2, [1] * (3 + i % 4), [2])]) for i in range(11)]
    traces = [Pack([RecExample(100 + i, i, i, 1, [1] * 5, [2, 3])]) for i in range(3)]
    params = _params(batch_size=3, reasoning_share=0.4, seed=5)
    before = with_extras(label_batches(packs, 3, None, np.random.default_rng(5)), {"reasoning": (traces, 0.4)}, 3,
                         np.random.default_rng([5, 1]))
    shape = lambda schedule: [(m.kind, [p.rows for p in m.packs]) for m in schedule]  # noqa: E731
    assert shape(training_schedule(packs, traces, params)) == shape(before)
    assert sum(m.kind == "labels" for m in before) == math.ceil(11 / 3)


def test_the_default_trains_one_pass_and_scores_nothing(cwd, monkeypatch):
    recommender = _recommender()
    calls = _record_scoring(monkeypatch, recommender)
    trained = _train(recommender, CLUSTER, _params())
    assert calls == []
    log, metrics = trained.log, trained.metrics
    assert log["evals"] == [] and metrics["validation_seconds"] == 0.0
    assert not {"best_step", "best_eval", "epochs", "valid_small", "valid_small_rows"} & (set(log) | set(metrics))
    assert log["micro_batches"] == {"labels": math.ceil(trained.description["packs"] / 2), "reasoning": 0}
    assert len(log["steps"]) == log["micro_batches"]["labels"]


# --- epochs ---

@pytest.mark.parametrize("prompt", ["cf", "text"])
def test_epochs_score_the_clusters_valid_rows_in_the_model_they_train_and_keep_the_best(cwd, monkeypatch, prompt):
    recommender = _recommender(prompt)
    calls = _record_scoring(monkeypatch, recommender)
    trained = _train(recommender, CLUSTER, _params(prompt=prompt, epochs=3, steps_per_epoch=2))
    log, metrics = trained.log, trained.metrics
    frame = recommender.data.subset("valid_small")
    rows = sorted(frame.loc[frame["user"].isin(CLUSTER), "row"])
    assert len(rows) == 5 and len(frame) == 9  # the cluster's share of valid_small, no other user's
    assert [c["rows"] for c in calls] == [rows] * 3  # after each epoch
    assert all(c["training"] and c["back_to_training"] for c in calls)  # scored mid-training, training resumed after
    assert [(e["epoch"], e["step"]) for e in log["evals"]] == [(1, 2), (2, 4), (3, 6)]
    assert log["epochs"] == {"planned": 3, "steps_per_epoch": 2, "steps_planned": 6, "stopped_early": False}
    users = frame.set_index("row").loc[rows, "user"].to_numpy()
    labels = frame.set_index("row").loc[rows, "label"].to_numpy()
    for call, evaluation in zip(calls, log["evals"]):  # each evaluation measured those scores
        assert evaluation == {**selection_metrics(users, labels, call["scores"], "weighted"), "epoch": evaluation["epoch"],
                              "step": evaluation["step"]}
    selections = [e["selection"] for e in log["evals"]]
    best = max(i for i, value in enumerate(selections) if value == max(selections))  # ties: the later
    assert (log["best_eval"], log["best_step"]) == (best, 2 * (best + 1))
    chosen = {k: log["evals"][best][k] for k in ("auc", "uauc", "selection")}
    assert log["valid_small"] == metrics["valid_small"] == chosen and metrics["best_step"] == log["best_step"]
    assert metrics["valid_small_rows"] == log["valid_small_rows"] == 5 and metrics["epochs"] == log["epochs"]
    # the weights kept score what the best evaluation recorded
    np.testing.assert_allclose(recommender.score(_valid(recommender, CLUSTER), 4, "float32"), calls[best]["scores"],
                               rtol=1e-5, atol=1e-6)
    valid = _valid(recommender, CLUSTER)
    assert all(bool(e.slot_positions) == (prompt == "cf") for e in valid)  # the prompt form it trains on


def test_the_best_epoch_is_restored_and_patience_stops(cwd):
    """A scripted selection (epoch 2 best, then worse): the weights after training are epoch 2's
    and score as they scored then; patience 2 stops after epoch 4 of 6."""
    recommender = _recommender()
    valid = _valid(recommender, CLUSTER)
    values, states, scores = iter([0.3, 0.9, 0.5, 0.1, 0.8, 0.95]), [], []

    def validate():
        states.append(trainable_state(recommender.rec))
        scores.append(recommender.score(valid, 4, "float32"))
        return next(values)

    log = train_expert(recommender.rec, _cluster_packs(recommender, CLUSTER), [], _params(epochs=6, steps_per_epoch=2,
                                                                                        patience=2),
                       load_section("rec", RecParams).loss, validate=validate)
    assert len(log["evals"]) == 4 and len(log["steps"]) == 8 and log["epochs"]["stopped_early"] is True
    assert (log["best_eval"], log["best_step"]) == (1, 4)
    names = [n for n, p in recommender.rec.named_parameters() if "lora_" in n and ".layers.3." in n]
    kept = dict(recommender.rec.named_parameters())
    assert names and all(torch.equal(kept[n], states[1][n]) for n in names)
    assert not all(torch.equal(kept[n], states[3][n]) for n in names)  # the last epoch's weights differed
    np.testing.assert_allclose(recommender.score(valid, 4, "float32"), scores[1], rtol=1e-5, atol=1e-6)
    assert not np.allclose(scores[1], scores[3])


def test_epochs_need_the_clusters_valid_rows(cwd):
    recommender = _recommender()
    with pytest.raises(ValueError, match="experts.train.epochs"):
        train_expert(recommender.rec, _cluster_packs(recommender, CLUSTER), [], _params(epochs=2),
                     load_section("rec", RecParams).loss)


@pytest.mark.parametrize("users, words", [
    (ONE_LABEL, "expert@1's cluster has 3 valid_small rows (0 liked, 0 users with both labels)"),
    ({77}, "expert@1's cluster has 0 valid_small rows"),
])
def test_a_cluster_whose_valid_rows_cannot_select_is_one_line_naming_the_key(cwd, users, words):
    recommender = _recommender()
    lora = lambda: {n: p.detach().clone() for n, p in recommender.rec.named_parameters() if "lora_" in n}  # noqa: E731
    before = lora()
    scoring = load_section("rec", RecParams).scoring
    with pytest.raises(BadParams) as err:
        if users == ONE_LABEL:
            _train(recommender, users, _params(epochs=2), slot=1)
        else:  # no user of the tiny data lacks valid rows: the check alone
            cluster_validation(recommender, 1, users, _params(epochs=2), scoring)
    line = str(err.value)
    assert line.startswith("experts.train.epochs: ") and words in line and "\n" not in line
    assert "rec.scoring.selection 'weighted' is undefined" in line
    assert all(torch.equal(before[k], v) for k, v in lora().items())  # nothing trained
    if users == ONE_LABEL:  # one pass needs no valid rows
        assert len(_train(recommender, users, _params(), slot=1).log["steps"]) > 0


# --- params ---

def _load_experts(tmp_path, **train):
    experts = section("experts", train=train)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"experts": experts}))
    return load_section("experts", ExpertsParams, tmp_path / "params.yaml")


@pytest.mark.parametrize("train, words", [
    ({"patience": 3}, "experts.train.patience: needs validations (epochs) (got 3)"),
    ({"steps_per_epoch": 5}, "experts.train.steps_per_epoch: only with epochs (got 5)"),
    ({"warmup_lr": 1e-6}, "experts.train.warmup_lr: only with epochs"),
    ({"min_lr": 0.01}, "experts.train.min_lr: above lr 0.0005"),
    ({"epochs": 2, "steps_per_epoch": 2}, "experts.train.warmup_steps: 4 is not shorter than the 4 steps"),
    ({"epochs": 0}, "experts.train.epochs: Input should be greater than or equal to 1"),
])
def test_epoch_keys_that_do_not_go_together_are_one_line_naming_the_key(tmp_path, train, words):
    with pytest.raises(BadParams) as err:
        _load_experts(tmp_path, **train)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_the_references_stage3_schedule_loads(tmp_path):
    """reason_mf_stage3.yaml's values: min_lr 8e-5 above init_lr 1e-5 (its cosine rises), which
    only the epochs' schedule takes."""
    train = _load_experts(tmp_path, epochs=30, steps_per_epoch=800, patience=15, lr=1e-5, min_lr=8e-5,
                          warmup_lr=1e-6, warmup_steps=200).train
    assert (train.epochs, train.steps_per_epoch, train.patience, train.min_lr, train.warmup_lr) == (30, 800, 15, 8e-5,
                                                                                                   1e-6)
    loop = loop_params(train, "float32")  # the loop takes them: the reference's warmup, then its cosine up to min_lr
    rate = lambda step: loop.lr * loop.lr_factor(24_000)(step)  # noqa: E731
    assert (loop.epochs, loop.patience) == (30, 15)
    assert [rate(0), rate(100), rate(12_000)] == pytest.approx([1e-6, 1e-6 + 9e-6 * 100 / 200, 4.5e-5], rel=1e-9)
    with pytest.raises(BadParams, match="experts.train.min_lr: above lr"):
        _load_experts(tmp_path, lr=1e-5, min_lr=8e-5)
