"""RDRec's sequential task (pipeline/rdrec/next_item.py): the next-item head learns on a tiny random
Llama, the ablation trains the same rank and next batches without the rationale ones, and the
stage's full-catalogue ranks (data/ranking/<variant>.parquet) hold every target, reproduce from the
saved student and are the same bytes for the same seed."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from rec_tiny import CF_DIM, TITLES
from test_rdrec import student_params, tiny_model, tiny_project  # noqa: F401 (fixtures)

import stages.rdrec
from pipeline import layout, schemas
from pipeline.artifacts import read_frame
from pipeline.params import load_section
from pipeline.ranking.catalogue import ranking_users
from pipeline.rdrec.next_item import NextItemHead, prompt_states
from pipeline.rdrec.params import RDRecParams, StudentTraining
from pipeline.rdrec.student import Backbone, build_student
from pipeline.rdrec.tasks import TaskEncoder
from pipeline.rdrec.training import student_schedule
from pipeline.rec.examples import CFVectors, RecExample, build_catalog, load_cf_vectors
from pipeline.rec.model import LoraParams, load_rec_model
from pipeline.rec.packing import Pack, singletons
from pipeline.rec.params import LossParams, RecParams
from pipeline.rec.training import LoopParams, MicroBatch, train_loop


def test_the_next_item_head_learns_the_next_items(tiny_model):
    rng = np.random.default_rng(0)
    vectors = CFVectors(rng.normal(size=(4, CF_DIM)).astype(np.float32),
                        rng.normal(size=(len(TITLES), CF_DIM)).astype(np.float32))
    lora = LoraParams(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"], layers=None)
    backbone = Backbone(str(tiny_model), lora, projector_expansion=2, match_embedding_norm=True,
                        answer_logit="yes_minus_no", threads=1, device="cpu")
    rec = build_student(backbone, vectors, seed=1, frozen_dtype="float32")
    items = pd.DataFrame({"item": range(len(TITLES)), "title": TITLES, "categories": [[]] * len(TITLES)})
    encoder = TaskEncoder(rec.tokenizer, build_catalog(items, None, 3, 0), vectors, history_items=2,
                          max_rationale_tokens=4)
    # four users, each with its own history and next item (user u's next item: 2u + 1)
    examples = [encoder.next(u, u, 2 * u + 1, [2 * u, (2 * u + 3) % 8], [1, 0]) for u in range(4)]
    assert all(e.answer_ids == [] for e in examples)  # the head reads the last prompt token: no answer tokens
    head = NextItemHead(vectors.items)
    targets = torch.tensor([e.item for e in examples])

    def loss_and_top() -> tuple[float, list[int]]:
        with torch.no_grad():
            logits = head.logits(rec, prompt_states(rec, examples, batch_size=2, dtype="float32"))
        return float(torch.nn.functional.cross_entropy(logits, targets)), logits.argmax(dim=1).tolist()

    before, top_before = loss_and_top()
    params = LoopParams(lr=0.01, weight_decay=0.0, warmup_steps=0, grad_accum=1, dtype="float32", seed=1)
    schedule = [MicroBatch("next", singletons(examples))] * 40
    log = train_loop(rec, schedule, params, LossParams(bce_weight_single=0.9, bce_weight_multi=0.0),
                     task_losses={"next": head.loss})
    after, top_after = loss_and_top()
    # the step's loss is the catalogue cross-entropy (rec_loss would report a BCE on the Yes/No logit)
    assert log["steps"][0]["loss"] == pytest.approx(before, rel=1e-4) and log["steps"][0]["bce"] == 0.0
    assert after < 0.2 * before and top_after == [1, 3, 5, 7] != top_before


def pack(row: int) -> Pack:
    return Pack([RecExample(row, 0, 0, 1, [1, 2, 3], [])])


def test_the_ablation_trains_the_same_rank_and_next_batches_in_the_same_order():
    pools = {"rank": [pack(r) for r in range(10)], "next": [pack(100 + r) for r in range(7)],
             "preference": [pack(200 + r) for r in range(5)], "attributes": [pack(300 + r) for r in range(5)]}
    train = StudentTraining(**student_params()["train"])
    full = student_schedule(pools, {"rank": 0.5, "next": 0.25, "preference": 0.25, "attributes": 0.25}, train)
    ablated = student_schedule(pools, {"rank": 0.5, "next": 0.25}, train)
    rows = lambda schedule: [(m.kind, [p.rows[0] for p in m.packs]) for m in schedule]  # noqa: E731
    kinds = [m.kind for m in full]
    # 3 rank batches of 4 packs; each other task 3 x 0.25 / 0.5 = 1.5 -> 2 batches
    assert kinds.count("rank") == 3
    assert kinds.count("next") == kinds.count("preference") == kinds.count("attributes") == 2
    assert [m.kind for m in ablated] != ["rank"] * 3 + ["next"] * 2  # next batches are placed among the rank ones
    assert rows(ablated) == [r for r in rows(full) if r[0] in ("rank", "next")]
    assert {m.kind for m in ablated} == {"rank", "next"}
    # the count comes from the weights as written: 1 : 0.5 is 0.5 : 0.25
    assert rows(student_schedule(pools, {"rank": 1.0, "next": 0.5}, train)) == rows(ablated)


def test_the_stage_ranks_every_target_over_the_catalogue_as_the_saved_student_does(tiny_project):
    root = tiny_project
    metrics = stages.rdrec.main("rdrec")
    ablated = stages.rdrec.main("rdrec_no_rationales")
    interactions = read_frame(layout.INTERACTIONS, schemas.INTERACTIONS)
    users = ranking_users(interactions, len(TITLES))
    ranks = read_frame(layout.ranking("rdrec"), schemas.RANKS)
    assert ranks[["task", "user", "item"]].to_numpy().tolist() == users.targets.to_numpy().tolist()
    assert set(ranks["task"]) == {"topn", "next"} and metrics["ranking_users"] == len(users.users) == 6
    assert metrics["ranking_targets"] == {"next": int((users.targets["task"] == "next").sum()),
                                          "topn": int((users.targets["task"] == "topn").sum())}
    assert metrics["ranking_seconds"] > 0 and metrics["ranking_prompt_tokens"] > 0
    index = {int(u): k for k, u in enumerate(users.users)}
    sizes = [len(users.candidates(index[u])) for u in ranks["user"]]
    assert ranks["candidates"].tolist() == sizes
    assert ((0 <= ranks["rank"]) & (ranks["rank"] < ranks["candidates"])).all()

    # the saved adapter + projector give the same ranks: the head has no weights of its own
    params = load_section("rdrec", RDRecParams)
    rec = load_rec_model(load_section("rec", RecParams).backbone, layout.rdrec_dir("rdrec"))
    cf = layout.CF_SELECTED_DIR
    vectors = load_cf_vectors(cf / "user_vectors.parquet", cf / "item_vectors.parquet", "rdrec")
    items = read_frame(layout.ITEMS, schemas.ITEMS)
    encoder = TaskEncoder(rec.tokenizer, build_catalog(items, None, params.prompt.title_words, 0), vectors,
                          params.prompt.history_items, params.prompt.max_rationale_tokens)
    first = interactions.set_index("row").loc[users.first_rows]
    prompts = [encoder.next(row, r.user, r.item, r.history_items, r.history_labels)
               for row, r in zip(users.first_rows, first.itertuples(index=False))]
    scores = NextItemHead(vectors.items).logits(rec, prompt_states(rec, prompts, 1, "float32")).detach().numpy()
    for row in ranks.itertuples(index=False):
        candidates = users.candidates(index[row.user])
        own = scores[index[row.user]]
        assert row.rank == int((own[candidates] >= own[row.item]).sum()) - 1
    assert scores.std(axis=1).min() > 0  # the catalogue is not scored flat

    # the ablation's next batches are the student's; it has no rationale batches
    assert ablated["tasks"]["next"] == metrics["tasks"]["next"] and set(ablated["tasks"]) == {"rank", "next"}
    log = json.loads((root / "data/rdrec/rdrec_no_rationales/train_log.json").read_text())
    assert [k for s in log["steps"] for k in s["kinds"]].count("next") == 1
    first_bytes = layout.ranking("rdrec").read_bytes()
    stages.rdrec.main("rdrec")  # same inputs, same seeds: same bytes
    assert layout.ranking("rdrec").read_bytes() == first_bytes


def test_a_variant_without_the_next_task_is_refused():
    weights = student_params()
    weights["variants"] = {"rdrec": {"rank": 1.0}}
    with pytest.raises(ValueError, match="needs positive 'rank' and 'next' weights"):
        RDRecParams(**weights)
