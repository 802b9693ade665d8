"""The fused row (stages/fused.py, pipeline/ranking/fusion.py): the weight is the grid's best AUC
on the selection rows only, the same fusion scores the evaluation rows and orders the retrieved
lists by the ranking path's rule, and a part without selection rows is a one-line error."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import rec_tiny
from params_base import section
from tiny_ingest import write_cf_selection
from pipeline import layout, schemas
from pipeline.artifacts import read_frame, write_frame
from pipeline.errors import BadInput
from pipeline.metrics.classification import auc
from pipeline.ranking.catalogue import ranking_users
from pipeline.ranking.fusion import WEIGHTS, choose_fusion
from pipeline.ranking.lists import reranked_order


def test_the_weight_is_the_best_of_the_grid_and_ties_go_to_the_smaller():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    llm, cf = labels + rng.normal(0, 1.2, 400), labels + rng.normal(0, 1.2, 400)
    fusion = choose_fusion(labels, 5 * llm + 3, cf)  # the LLM's scale and shift do not matter
    assert set(fusion.selection_auc) == {f"{w:.2f}" for w in WEIGHTS}
    assert fusion.selection_auc[f"{fusion.weight:.2f}"] == max(fusion.selection_auc.values())
    assert 0 < fusion.weight < 1  # two independent noisy signals: the mixture beats either
    assert choose_fusion(labels, cf, cf).weight == 0.0  # every weight alike: the first
    with pytest.raises(ValueError, match="both labels"):
        choose_fusion(np.ones(3), np.zeros(3), np.zeros(3))


def _project(root, with_valid: bool = True):
    rec_tiny.write_tiny_artifacts(root)
    interactions = read_frame(root / layout.INTERACTIONS, schemas.INTERACTIONS)
    rng = np.random.default_rng(1)
    labels = interactions["label"].to_numpy()
    cf = interactions[["row", "user", "item"]].assign(score=(labels + rng.normal(0, 1, len(labels))).astype(np.float32))
    write_frame(cf, root / layout.predictions("mf"), schemas.PREDICTIONS)
    write_cf_selection(root, "mf")
    scored = interactions[interactions["split"].isin(["valid", "test"] if with_valid else ["test"])]
    llm = scored[["row", "user", "item"]].assign(
        score=(scored["label"].to_numpy() * 2 + rng.normal(0, 1, len(scored))).astype(np.float32))
    write_frame(llm, root / layout.predictions("thinkrec"), schemas.PREDICTIONS)
    users = ranking_users(interactions, 8)
    candidates = []
    for index, user in enumerate(users.users):
        items = users.candidates(index)[:3]
        candidates += [(user, item, rank + 1, float(rng.normal()), float(rng.normal())) for rank, item in enumerate(items)]
    write_frame(pd.DataFrame(candidates, columns=schemas.RERANKED.names).astype(
        {"user": np.int32, "item": np.int32, "retriever_rank": np.int32, "retriever_score": np.float32,
         "score": np.float32}), root / layout.reranked("thinkrec"), schemas.RERANKED)
    rec_tiny.write_params(root, {"evaluate": section("evaluate"), "ranking": section("ranking")})
    return interactions


def test_the_stage_fuses_rows_and_lists(tmp_path, monkeypatch, capsys):
    from stages.fused import main

    interactions = _project(tmp_path)
    monkeypatch.chdir(tmp_path)
    main("thinkrec_fused")
    log = json.loads((tmp_path / layout.train_metrics("thinkrec_fused")).read_text())
    fused = read_frame(layout.predictions("thinkrec_fused"), schemas.PREDICTIONS)
    llm = read_frame(layout.predictions("thinkrec"), schemas.PREDICTIONS)
    assert sorted(fused["row"]) == sorted(llm["row"])
    valid = interactions[interactions["row"].isin(range(30, 39))]  # valid_small of the tiny ingest
    assert log["selection_rows"] == len(valid) and log["retriever"] == "mf"
    assert log["selection_auc"][f"{log['weight']:.2f}"] == max(log["selection_auc"].values())
    chosen = fused.merge(valid[["row", "label"]], on="row")
    assert auc(chosen["label"].to_numpy().astype(bool), chosen["score"].to_numpy(np.float64)) == pytest.approx(
        log["selection_auc"][f"{log['weight']:.2f}"], abs=1e-6)
    candidates = read_frame(layout.reranked("thinkrec"), schemas.RERANKED)
    ranks = read_frame(layout.ranking("thinkrec_fused"), schemas.RANKS)
    weight = log["weight"]
    for row in ranks.itertuples():
        mine = candidates[candidates["user"] == row.user]
        score = (weight * (mine["score"] - log["llm_mean"]) / log["llm_std"]
                 + (1 - weight) * (mine["retriever_score"] - log["retriever_mean"]) / log["retriever_std"])
        order = mine["item"].to_numpy()[reranked_order(score.to_numpy(), mine["retriever_rank"].to_numpy())].tolist()
        assert row.rank == (order.index(row.item) if row.item in order else -1)
    assert "thinkrec_fused: weight" in capsys.readouterr().out


def test_a_part_without_selection_rows_names_its_file(tmp_path, monkeypatch):
    from stages.fused import main

    _project(tmp_path, with_valid=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BadInput, match=r"data/predictions/thinkrec.parquet: no valid_small rows scored"):
        main("thinkrec_fused")
