"""`thinkrec recommend` on tiny artifacts: CF proposes unseen items, the LLM variant re-ranks them with
the user's latest history (scores equal a full-prompt forward of the same prompts), the top one is
explained; unknown users, users without history and missing artifacts name what to do."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from transformers import GenerationMixin

import rec_tiny
from params_base import section
from recommend_project import write_recommend_project
from pipeline import schemas
from pipeline.artifacts import read_frame
from pipeline.cli.main import main
from pipeline.explain import says_nothing as says_nothing_rule
from pipeline.profiles import overlay
from pipeline.rec.examples import CFVectors, build_catalog, build_examples, dense_vectors
from pipeline.rec.model import load_rec_model
from pipeline.rec.prompts import get_template
from pipeline.rec.scoring import score_examples

HISTORY = 3  # rec.prompt.history_items of tiny_params


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Tiny artifacts + 6 items nobody rated + a 7th user without interactions + an untrained collm."""
    return write_recommend_project(tmp_path_factory.mktemp("recommend"))


def _run(monkeypatch, capsys, root, *args):
    monkeypatch.chdir(root)
    code = main(["recommend", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_reranks_unseen_cf_candidates_with_the_latest_history(project, monkeypatch, capsys):
    code, out, err = _run(monkeypatch, capsys, project, "--user", "u1", "--json")
    assert code == 0, err
    answer = json.loads(out)
    interactions = read_frame(project / "data/ingest/interactions.parquet", schemas.INTERACTIONS)
    items = read_frame(project / "data/ingest/items.parquet", schemas.ITEMS)
    mine = interactions[interactions["user"] == 1].sort_values("row")
    # history: the user's last HISTORY interactions (every split), oldest first
    titles = dict(zip(items["item"], items["title"]))
    assert [h["title"] for h in answer["history"]] == [titles[i] for i in mine["item"].tail(HISTORY)]
    assert [h["liked"] for h in answer["history"]] == [bool(v) for v in mine["label"].tail(HISTORY)]
    # candidates: the 4 unseen items with the highest CF score; 3 shown, by LLM score
    users = dense_vectors(read_frame(project / "data/cf/mf/user_vectors.parquet"), "user", "u")
    item_vecs = dense_vectors(read_frame(project / "data/cf/mf/item_vectors.parquet"), "item", "i")
    unseen = [i for i in range(len(items)) if i not in set(mine["item"])]
    cf_top = sorted(unseen, key=lambda i: -float(item_vecs[i] @ users[1]))[:4]
    raw = dict(zip(items["raw_id"], items["item"]))
    shown = [raw[r["item"]] for r in answer["recommendations"]]
    assert len(shown) == 3 and set(shown) <= set(cf_top)
    assert [r["cf_rank"] for r in answer["recommendations"]] == [cf_top.index(i) + 1 for i in shown]
    scores = [r["score"] for r in answer["recommendations"]]
    assert scores == sorted(scores, reverse=True)
    # the scores are a plain full-prompt forward of the prompts built here from the raw tables
    rec = load_rec_model(str(project / "tiny"), project / "data/rec/collm")
    last = mine.iloc[-1]
    history = (list(last["history_items"]) + [last["item"]], list(last["history_labels"]) + [last["label"]])
    frame = pd.DataFrame({"row": -1, "user": 1, "item": cf_top, "label": 0,
                          "history_items": [history[0]] * 4, "history_labels": [history[1]] * 4})
    catalog = build_catalog(items, None, title_words=3, keywords_per_item=0)
    examples = build_examples(frame, catalog, rec.tokenizer, get_template("v2"), HISTORY, CFVectors(users, item_vecs))
    expected = dict(zip(cf_top, score_examples(rec, examples, 8, "float32")))
    assert scores == pytest.approx([expected[i] for i in shown], abs=2e-4)
    assert sorted(expected.values(), reverse=True)[:3] == pytest.approx(scores, abs=2e-4)
    # --explain 1: only the first recommendation carries the model's text
    assert "reasoning" in answer["recommendations"][0]
    assert all("reasoning" not in r for r in answer["recommendations"][1:])


def test_text_output_lists_k_rows(project, monkeypatch, capsys):
    code, out, err = _run(monkeypatch, capsys, project, "--user", "u2", "-k", "2", "--explain", "0")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("user u2: collm re-ranked the top 4 unseen items of the CF model mf (cf.model: mf)")
    # each row is followed by its evidence line (tests/test_recommend_grounding.py)
    assert [line.split()[0] for line in lines[3:]] == ["1", "because:", "2", "because:"]
    assert "why:" not in out


@pytest.mark.parametrize("user, message", [
    ("nobody", "user 'nobody' is not in the dataset"),
    ("u6", "user 'u6' has no interactions"),
])
def test_unknown_user_and_user_without_history_fail_clearly(project, monkeypatch, capsys, user, message):
    code, out, err = _run(monkeypatch, capsys, project, "--user", user)
    assert code == 1 and out == ""
    assert message in err


def test_missing_artifacts_name_the_stage_to_run(project, monkeypatch, capsys):
    code, _, err = _run(monkeypatch, capsys, project, "--user", "u1", "--model", "thinkrec")
    assert code == 1
    assert "data/rec/thinkrec/model.json is missing: run `dvc repro thinkrec`" in err
    vectors = project / "data/cf_selected/user_vectors.parquet"
    vectors.rename(vectors.with_suffix(".bak"))
    try:
        code, _, err = _run(monkeypatch, capsys, project, "--user", "u1")
    finally:
        vectors.with_suffix(".bak").rename(vectors)
    assert code == 1 and "data/cf_selected/user_vectors.parquet is missing: run `dvc repro cf_select`" in err


def test_a_selection_of_another_cf_model_than_the_named_one_is_refused(project, monkeypatch, capsys):
    """cf.model changed to a model cf_select has not selected: recommend would re-rank the old one."""
    params_file = project / "params.yaml"
    before = params_file.read_text()
    params = yaml.safe_load(before)
    params["cf"]["model"] = "lightgcn"
    params_file.write_text(yaml.safe_dump(params))
    try:
        code, out, err = _run(monkeypatch, capsys, project, "--user", "u1")
    finally:
        params_file.write_text(before)
    assert (code, out) == (1, "")
    assert err == ("thinkrec recommend: error: data/cf_selected/selected.json: holds mf, but params.yaml cf.model is "
                   "lightgcn (a stale selection); run `dvc repro cf_select` to rebuild it\n")


def test_sequential_cf_state_is_reencoded_from_the_latest_history(tmp_path):
    from pipeline.cf.config import MFConfig, SASRecConfig
    from pipeline.cf.mf import MF
    from pipeline.cf.sasrec import SASRec
    from pipeline.recommend.cf_state import load_history_encoder
    from stages.cf import checkpoint_bytes

    torch.manual_seed(0)
    config = SASRecConfig(hidden=8, blocks=1, heads=1, dropout=0.0, max_length=4, lr=0.001, weight_decay=0.0)
    model = SASRec(10, config).eval()
    path = tmp_path / "model.pt"
    path.write_bytes(checkpoint_bytes({"model": "sasrec", "config": config.model_dump(), "n_users": 3,
                                       "n_items": 10, "state_dict": model.state_dict()}))
    encode = load_history_encoder(path)
    items, labels = [1, 5, 2, 7, 3], [1, 0, 1, 1, 0]
    state = encode(2, items, labels)
    # the last max_length items (1-based ids, labels + 1), as the cf stage encodes a row's history
    expected = model.encode(torch.tensor([[i + 1 for i in items[-4:]]]), torch.tensor([[v + 1 for v in labels[-4:]]]))
    assert state == pytest.approx(expected[0].detach().numpy(), abs=1e-6)
    assert np.abs(state - encode(2, items[:-1], labels[:-1])).max() > 1e-3  # the latest item counts
    mf = tmp_path / "mf.pt"
    mf.write_bytes(checkpoint_bytes({"model": "mf", "config": MFConfig(dim=4, lr=0.1, weight_decay=0.0).model_dump(),
                                     "n_users": 3, "n_items": 10, "state_dict": MF(3, 10, MFConfig(dim=4, lr=0.1, weight_decay=0.0)).state_dict()}))
    assert load_history_encoder(mf) is None and load_history_encoder(tmp_path / "missing.pt") is None


def _with_explain(root, **overrides) -> None:
    """Rewrite the project's explain section (params.yaml's, the fixture's keys, `overrides` over them)."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["explain"] = overlay(params["explain"], overrides)
    rec_tiny.write_params(root, params)


def test_reasons_are_decoded_with_the_explain_sections_repetition_controls(project, monkeypatch, capsys):
    seen = []
    real = GenerationMixin.generate

    def recording(self, *args, **kwargs):  # the real generate, its processors noted
        seen.append([(type(p).__name__, vars(p)) for p in kwargs["logits_processor"]])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(GenerationMixin, "generate", recording)
    _with_explain(project, no_repeat_ngram_size=2, repetition_penalty=1.7)
    try:
        code, out, err = _run(monkeypatch, capsys, project, "--user", "u1", "--json")
    finally:
        _with_explain(project, **{k: section("explain")[k] for k in ("no_repeat_ngram_size", "repetition_penalty")})
    assert code == 0, err
    assert len(seen) == 1  # one generate() call: the single explained recommendation
    processors = dict((name, state) for name, state in seen[0])
    assert processors["RepetitionPenaltyLogitsProcessor"]["penalty"] == 1.7
    assert processors["RepetitionPenaltyLogitsProcessor"]["prompt_ignore_length"] is None
    assert processors["NoRepeatNGramLogitsProcessor"]["ngram_size"] == 2


def test_a_reason_that_says_nothing_is_named_not_printed(project, monkeypatch, capsys):
    code, out, err = _run(monkeypatch, capsys, project, "--user", "u1", "--json")
    assert code == 0, err
    reason = json.loads(out)["recommendations"][0]["reasoning"]
    words = re.findall(r"\w+", reason.lower())
    assert words  # the untrained model wrote something
    # a rule this text passes: it is printed as written (the untrained model's text may be symbols,
    # U+FFFD and the like: the symbol share is lifted too)
    monkeypatch.setattr(says_nothing_rule, "MAX_SYMBOL_SHARE", 1.0)
    _with_explain(project, says_nothing={"min_distinct_words": 1, "min_distinct_ratio": 0.0})
    code, out, err = _run(monkeypatch, capsys, project, "--user", "u1", "--explain", "1")
    assert code == 0, err
    assert f"why: {' '.join(reason.split())}" in out
    # a rule it fails: named with its count, the text is not printed
    _with_explain(project, says_nothing={"min_distinct_words": len(set(words)) + 1, "min_distinct_ratio": 0.0})
    try:
        code, out, err = _run(monkeypatch, capsys, project, "--user", "u1", "--explain", "1")
        assert code == 0, err
        distinct = len(set(words))
        assert f"why: (the model's reason says nothing: {distinct} distinct word{'' if distinct == 1 else 's'})" in out
        assert " ".join(reason.split()) not in out
        code, out, err = _run(monkeypatch, capsys, project, "--user", "u1", "--json")
        flagged = json.loads(out)["recommendations"][0]
        assert flagged["reasoning"] == reason and flagged["reasoning_says_nothing"].startswith(f"{distinct} distinct")
    finally:
        _with_explain(project, says_nothing=section("explain.says_nothing"))


def test_null_candidates_re_rank_the_list_the_evaluation_measures(project, monkeypatch, capsys):
    """recommend.candidates: null (the default) re-ranks ranking.retrieve_k items, the evaluation's K."""
    path = project / "params.yaml"
    saved = path.read_text()
    params = yaml.safe_load(saved)
    params["recommend"]["candidates"] = None
    params["ranking"]["retrieve_k"] = 5  # not the fixture's 4
    path.write_text(yaml.safe_dump(params))
    try:
        code, out, err = _run(monkeypatch, capsys, project, "--user", "u1", "--json", "--explain", "0", "-k", "5")
    finally:
        path.write_text(saved)
    assert code == 0, err
    answer = json.loads(out)
    assert answer["candidates"] == 5 and sorted(r["cf_rank"] for r in answer["recommendations"]) == [1, 2, 3, 4, 5]
