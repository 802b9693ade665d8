"""Reasons a person can trust (`thinkrec recommend`): a reason that contradicts the history shown
is withheld and the output says why, a consistent one is printed, garbage is withheld by the
says-nothing rule, and every recommendation carries evidence from data (CF cosine to the liked
history, shared genres)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from params_base import section
from recommend_project import write_recommend_project
from pipeline import schemas
from pipeline.artifacts import read_frame
from pipeline.cli.main import main
from pipeline.explain.says_nothing import SaysNothingRule, says_nothing
from pipeline.rec.examples import dense_vectors
from pipeline.rec.recommender import Recommender
from pipeline.recommend.grounding import contradictions, evidence

HISTORY = [("Alpha Story", False), ("Bravo Tale", True), ("Faster Pussycat! Kill! Kill!", False),
           ("Nutty Professor, The", True)]
GARBAGE = "Yescounters No||=||None%||1:|| Yes|• Noortunately: yes"


@pytest.mark.parametrize("reason, found", [
    ("Yes. The user liked Alpha Story.", ["calls Alpha Story liked"]),
    ("The user likes Faster Pussycat! Kill! Kill! and comedy.", ["calls Faster Pussycat! Kill! Kill! liked"]),
    ("alpha story, which they enjoyed, is a drama", ["calls Alpha Story liked"]),  # case, after the title
    ("The user did not like The Nutty Professor.", ["calls Nutty Professor, The not liked"]),  # article moved
    ("The user hated Bravo Tale and loved Alpha Story.", ["calls Bravo Tale not liked", "calls Alpha Story liked"]),
    ("Alpha Story (liked)", ["calls Alpha Story liked"]),  # the prompt's own form
])
def test_contradictions_are_named(reason, found):
    assert contradictions(reason, HISTORY) == found


@pytest.mark.parametrize("reason", [
    "Yes. The user liked Bravo Tale but not Alpha Story.",
    "The user disliked Alpha Story and liked Bravo Tale.",
    "Faster Pussycat! Kill! Kill! (not liked). The user enjoys The Nutty Professor.",
    "The user watched Alpha Story. They enjoy westerns.",  # another sentence: not judged
    "Films like Alpha Story are dramas.",  # "like" as a preposition
    "Yes. The user enjoys comedy.",
])
def test_consistent_reasons_pass(reason):
    assert contradictions(reason, HISTORY) == []


def test_titles_are_matched_as_the_prompt_cuts_them():
    history = [("Alpha Story of the Long Night", False)]
    assert contradictions("The user liked Alpha Story of.", history, title_words=3) == [
        "calls Alpha Story of the Long Night liked"]
    assert contradictions("The user liked Alpha Story of.", history) == []  # without the cut: not the title
    # two history items read the same but are labelled differently: never judged
    assert contradictions("They liked Alpha Story.", [("Alpha Story", False), ("Alpha Story", True)]) == []


def test_garbage_says_nothing():
    rule = SaysNothingRule(**section("explain.says_nothing"))
    assert says_nothing(GARBAGE, rule) == "12 symbols in 50 characters"


def test_evidence_is_the_nearest_liked_history_by_cosine_and_the_shared_genres():
    vectors = np.array([[1, 0], [1, 1], [0, 1], [3, 0], [1, 0]], dtype=np.float32)  # (5 items, 2)
    items = pd.DataFrame({"title": ["Target", "A", "B", "C", "D"],
                          "categories": [["drama", "comedy"], ["comedy"], ["western"], ["horror"], ["drama"]]})
    # history: A, B, C liked; D not liked (cosine 1 with the target, but not liked: left out)
    found = evidence(0, ([1, 2, 3, 4], [1, 1, 1, 0]), vectors, items)
    assert [(i, t) for i, t, _ in found.similar_liked] == [(3, "C"), (1, "A")]
    assert [c for _, _, c in found.similar_liked] == pytest.approx([1.0, 1 / np.sqrt(2)])
    assert found.shared_genres == ["comedy"]  # drama only with D, which is not liked
    assert evidence(0, ([4], [0]), vectors, items).similar_liked == []


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return write_recommend_project(tmp_path_factory.mktemp("grounding"))


def _run(monkeypatch, capsys, root, reason, *args):
    monkeypatch.chdir(root)
    monkeypatch.setattr(Recommender, "reasons", lambda self, examples, *a, **k: [reason] * len(examples))
    code = main(["recommend", "--user", "u1", "--explain", "3", *args])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def _history(monkeypatch, capsys, project):
    return json.loads(_run(monkeypatch, capsys, project, "Yes. The user enjoys stories.", "--json"))["history"]


def test_a_reason_contradicting_the_history_is_withheld(project, monkeypatch, capsys):
    history = _history(monkeypatch, capsys, project)
    disliked = next(h["title"] for h in history if not h["liked"])
    reason = f"Yes. The user liked {disliked}, so they will like this."
    out = _run(monkeypatch, capsys, project, reason)
    assert f"why: (reason withheld: it contradicts the history: calls {disliked} liked)" in out
    assert reason not in out
    answer = json.loads(_run(monkeypatch, capsys, project, reason, "--json"))
    for r in answer["recommendations"]:
        assert r["reasoning"] is None
        assert r["reason_withheld"] == f"it contradicts the history: calls {disliked} liked"


def test_a_consistent_reason_is_printed(project, monkeypatch, capsys):
    history = _history(monkeypatch, capsys, project)
    disliked = next(h["title"] for h in history if not h["liked"])
    reason = f"Yes. The user disliked {disliked} but enjoys stories."
    out = _run(monkeypatch, capsys, project, reason)
    assert f"why: {reason}" in out and "withheld" not in out
    answer = json.loads(_run(monkeypatch, capsys, project, reason, "--json"))
    assert all(r["reasoning"] == reason and "reason_withheld" not in r for r in answer["recommendations"])


def test_garbage_is_withheld_by_the_says_nothing_rule(project, monkeypatch, capsys):
    out = _run(monkeypatch, capsys, project, GARBAGE)
    assert "why: (the model's reason says nothing: 12 symbols in 50 characters)" in out
    assert GARBAGE not in out


def test_every_recommendation_shows_its_evidence(project, monkeypatch, capsys):
    answer = json.loads(_run(monkeypatch, capsys, project, "Yes. The user enjoys stories.", "--json"))
    items = read_frame(project / "data/ingest/items.parquet", schemas.ITEMS).set_index("raw_id")
    vectors = dense_vectors(read_frame(project / "data/cf/mf/item_vectors.parquet"), "item", "i")
    liked = [h["item"] for h in answer["history"] if h["liked"]]
    assert liked  # the fixture's u1 liked something in the history shown
    liked_genres = {g for raw in liked for g in items.at[raw, "categories"]}
    for r in answer["recommendations"]:
        v = vectors[items.at[r["item"], "item"]]
        cosine = {raw: float(vectors[items.at[raw, "item"]] @ v / np.linalg.norm(vectors[items.at[raw, "item"]])
                             / np.linalg.norm(v)) for raw in liked}
        best = sorted(cosine, key=lambda raw: -cosine[raw])[:2]
        assert [s["item"] for s in r["evidence"]["similar_liked"]] == best
        assert [s["cosine"] for s in r["evidence"]["similar_liked"]] == pytest.approx([cosine[b] for b in best],
                                                                                     abs=1e-4)
        assert r["evidence"]["shared_genres"] == [g for g in items.at[r["item"], "categories"] if g in liked_genres]
    out = _run(monkeypatch, capsys, project, "Yes. The user enjoys stories.")
    first = answer["recommendations"][0]["evidence"]["similar_liked"][0]
    assert out.count("because: close to liked ") == len(answer["recommendations"])
    assert f"{first['title']} (CF cosine {first['cosine']:.2f})" in out
