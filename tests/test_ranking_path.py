"""One ranking path: the evaluation's full-catalogue re-ranking of a user is the list `thinkrec
recommend` shows that user from the same data (the CLI run on the interactions as they stood
before the user's first test row, which is the state the evaluation ranks from)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from recommend_project import stamp_as_the_stage, write_recommend_project
from pipeline import layout, schemas
from pipeline.artifacts import read_frame, write_frame
from pipeline.cli.main import main
from pipeline.params import load_section
from pipeline.ranking.evaluation import rerank_evaluation
from pipeline.ranking.lists import reranked_order
from pipeline.ranking.params import RankingParams
from pipeline.rec.examples import load_cf_vectors
from pipeline.rec.params import RecParams
from pipeline.rec.recommender import load_recommender

K = 4


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return write_recommend_project(tmp_path_factory.mktemp("ranking_path"))


def test_the_evaluation_ranks_what_recommend_shows(project, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(project)
    interactions = read_frame(layout.INTERACTIONS, schemas.INTERACTIONS)
    recommender = load_recommender("collm", load_section("rec", RecParams), "float32")
    selected = layout.CF_SELECTED_DIR
    retriever = load_cf_vectors(selected / "user_vectors.parquet", selected / "item_vectors.parquet", "test")
    reranked, ranks, timings = rerank_evaluation(recommender, interactions, retriever,
                                                 RankingParams(retrieve_k=K, max_users=None, seed=0), batch_size=8)
    assert timings["rerank_users"] == reranked["user"].nunique() > 0
    assert (reranked.groupby("user").size() == K).all()
    # every liked test item is ranked: inside the retrieved list at its position, else -1
    for row in ranks.itertuples():
        mine = reranked[reranked["user"] == row.user]
        order = mine["item"].to_numpy()[reranked_order(mine["score"].to_numpy(), mine["retriever_rank"].to_numpy())]
        assert row.rank == (order.tolist().index(row.item) if row.item in order else -1)

    user = int(reranked["user"].iloc[0])
    mine = reranked[reranked["user"] == user]
    evaluated = mine["item"].to_numpy()[reranked_order(mine["score"].to_numpy(), mine["retriever_rank"].to_numpy())]
    first_test = int(interactions.loc[(interactions["user"] == user) & (interactions["split"] == "test"), "row"].min())

    before = tmp_path / "before"  # the project as it stood before the user's first test row
    shutil.copytree(project, before)
    write_frame(interactions[interactions["row"] < first_test], before / layout.INTERACTIONS, schemas.INTERACTIONS)
    for relative, stage in (("metrics/collm_train.json", "collm"), ("data/cf_selected/train_log.json", "cf@mf")):
        stamp_as_the_stage(before, relative, stage)  # the models stand for that data (else recommend refuses)
    monkeypatch.chdir(before)
    code = main(["recommend", "--user", f"u{user}", "--candidates", str(K), "-k", str(K), "--explain", "0", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    answer = json.loads(out.out)
    items = read_frame(before / layout.ITEMS, schemas.ITEMS)
    raw = dict(zip(items["raw_id"], items["item"]))
    shown = [raw[r["item"]] for r in answer["recommendations"]]
    assert shown == evaluated.tolist()
    scores = dict(zip(mine["item"], mine["score"]))
    assert [r["score"] for r in answer["recommendations"]] == pytest.approx([scores[i] for i in shown], abs=5.1e-5)  # the JSON rounds to 4 places
    assert np.unique(shown).size == K
