"""RDRec rationale parsing, its fallback, input kinds, and the rationales stage from its CLI."""
import json
import re

import pytest
from params_base import section
from scripted_backend import ScriptedBackend, cached
from tiny_ingest import tiny_interactions, tiny_items, write_params, write_tiny_ingest

import stages.rationales
import stages.teacher
from pipeline.artifacts import read_frame
from pipeline.keywords.item_text import WordBudgets
from pipeline.llm.chat import SamplingParams
from pipeline.rationales.distill import METADATA, REVIEW, distill_rationales, select_rationale_rows
from pipeline.rationales.prompt import parse_rationale
from pipeline.schemas import RATIONALES

BUDGETS = WordBudgets(**section("rationales.budgets"))


@pytest.mark.parametrize(
    "answer",
    [
        "User preference: likes quiet thrillers.\nItem attributes: a slow, tense thriller.",
        "Sure!\n1. **User preference**: likes quiet thrillers.\n2. **Item attributes**: a slow, tense thriller.",
        "user preferences - likes quiet thrillers.\n\nITEM ATTRIBUTES: a slow, tense thriller.\nExtra line.",
    ],
)
def test_parse_rationale_line_by_line(answer):
    parsed = parse_rationale(answer, fallback="the review")
    assert parsed.parsed
    assert parsed.user_preference == "likes quiet thrillers."
    assert parsed.item_attributes == "a slow, tense thriller."


def test_unlabelled_answer_uses_its_first_two_sentences():
    answer = "The user prefers  quiet thrillers. The item is a slow,\ntense thriller! Extra words"
    parsed = parse_rationale(answer, fallback="the review")
    assert parsed.parsed
    assert parsed.user_preference == "The user prefers quiet thrillers."
    assert parsed.item_attributes == "The item is a slow, tense thriller!"


@pytest.mark.parametrize(
    "answer",
    ["The user likes thrillers and the item is a thriller.", "User preference: likes thrillers.", "Item attributes:  \nUser preference: x"],
)
def test_unparseable_answer_falls_back_to_the_review(answer):
    parsed = parse_rationale(answer, fallback="Great   pan, heats evenly.")
    assert not parsed.parsed
    assert parsed.user_preference == parsed.item_attributes == "Great pan, heats evenly."


def test_input_kind_follows_the_dataset():
    with_reviews = tiny_interactions(reviews=True)
    with_reviews.loc[with_reviews.index[::2], "review"] = None
    rows, kind = select_rationale_rows(with_reviews[with_reviews["split"] == "train"], 100, seed=0)
    assert kind == REVIEW and rows["review"].notna().all()
    rows, kind = select_rationale_rows(tiny_interactions(), 5, seed=0)
    assert kind == METADATA and len(rows) == 5 and rows["row"].is_monotonic_increasing


def test_metadata_input_names_the_item_and_the_rating(tmp_path):
    rows, kind = select_rationale_rows(tiny_interactions().iloc[:3], 3, seed=0)
    backend = ScriptedBackend(["User preference: a.\nItem attributes: b.", "nonsense", "nonsense 2"])
    result = distill_rationales(
        rows, kind, tiny_items(), cached(backend, tmp_path), SamplingParams(max_tokens=48), BUDGETS, 100
    )
    first = backend.requests[0].messages[-1].content
    assert f"Title: Film Number {rows['item'].iloc[0]}" in first
    assert f"rated this item {rows['rating'].iloc[0]:g} out of 5" in first
    assert result.parse_failures == 2
    assert result.table["source"].tolist() == ["llm", "fallback", "fallback"]
    assert result.table.loc[1, "user_preference"].startswith("A user rated this item")
    assert (result.table["input_kind"] == "metadata").all()


@pytest.mark.parametrize("reviews", [True, False])
def test_rationales_stage_cli(tmp_path, monkeypatch, reviews):
    interactions = write_tiny_ingest(tmp_path, reviews=reviews)
    write_params(tmp_path, rationales={"count": 8, "review_words": 5, "max_tokens": 48, "repetition_penalty": 1.0, "seed": 1,
                                       "budgets": {"title": 10, "categories": 10, "description": 50, "extra": 5},
                                       "answer_format": "auto"})
    monkeypatch.chdir(tmp_path)

    def answer(request):  # unparseable for odd item ids
        asked = [m.content for m in request.messages if m.role == "user"][-1]
        item = int(re.search(r"[Ff]ilm (?:Number )?(\d+)", asked).group(1))
        return "no idea" if item % 2 else "User preference: x.\nItem attributes: y."

    monkeypatch.setattr(stages.teacher, "build_backend", lambda config: ScriptedBackend(answer))
    stages.rationales.main()
    table = read_frame(tmp_path / stages.rationales.OUTPUT, RATIONALES)
    metrics = json.loads((tmp_path / stages.rationales.METRICS).read_text())
    assert len(table) == 8 and table["row"].isin(interactions.loc[interactions["split"] == "train", "row"]).all()
    assert metrics["input_kind"] == ("review" if reviews else "metadata")
    items = interactions.set_index("row").loc[table["row"], "item"].to_numpy()
    assert (table["source"] == "fallback").tolist() == (items % 2 == 1).tolist()
    assert metrics["parse_failures"] == int((items % 2).sum())
    kind = "review" if reviews else "metadata"
    assert metrics["answer_format"] == "prefill"  # auto on the local backend
    assert metrics["by_input_kind"] == {kind: {
        "rows": 8, "parsed": 8 - metrics["parse_failures"], "failures": metrics["parse_failures"],
        "failure_fraction": metrics["parse_failures"] / 8}}
    assert metrics["answer_forms"] == {"fallback": metrics["parse_failures"], "lines": 8 - metrics["parse_failures"]}
    if reviews:  # the fallback is the review, cut to review_words
        fallback = table[table["source"] == "fallback"]
        assert fallback["user_preference"].str.fullmatch(r"I watched film \d+ and").all()
    assert metrics["llm"]["calls"] + metrics["llm"]["cache_hits"] == 8  # equal requests are asked once

    stages.rationales.main()
    rerun = json.loads((tmp_path / stages.rationales.METRICS).read_text())
    assert rerun["llm"]["hit_rate"] == 1.0 and rerun["teacher"] == metrics["teacher"]
    assert metrics["teacher"]["requests"] == 8


def test_prefill_request_ends_in_the_assistant_turn_and_its_continuation_is_parsed(tmp_path):
    from pipeline.llm.local_backend import LocalBackend
    from pipeline.rationales.prompt import PREFILL, rationale_request
    from rec_tiny import write_tiny_model

    request = rationale_request("A user bought an item and said: \"nice\"", "review", SamplingParams(), "prefill")
    assert request.messages[-1].role == "assistant" and request.messages[-1].content == PREFILL
    backend = LocalBackend.__new__(LocalBackend)  # only render() is used: the tokenizer's chat template
    from transformers import AutoTokenizer
    backend.tokenizer = AutoTokenizer.from_pretrained(write_tiny_model(tmp_path / "model"))
    rendered = backend.render(request)
    assert rendered.endswith(f"<|im_start|>assistant\n{PREFILL}") and "<|im_end|>\n<|im_start|>assistant\n<|im_start|>" not in rendered
    rows, kind = select_rationale_rows(tiny_interactions().iloc[:2], 2, seed=0)
    backend = ScriptedBackend([" likes calm films.\nItem attributes: a calm film.", "PREFERENCE: likes noise. Loud film here."])
    result = distill_rationales(rows, kind, tiny_items(), cached(backend, tmp_path), SamplingParams(max_tokens=48),
                                BUDGETS, 100, "prefill")
    assert result.table["user_preference"].tolist() == ["likes calm films.", "PREFERENCE: likes noise."]
    assert result.table["item_attributes"].tolist() == ["a calm film.", "Loud film here."]
    assert result.forms == {"lines": 1, "sentences": 1} and result.parse_failures == 0


def test_json_schema_answers_are_validated_and_invalid_ones_fall_back(tmp_path):
    from pipeline.rationales.prompt import RationaleAnswer

    rows, kind = select_rationale_rows(tiny_interactions().iloc[:3], 3, seed=0)
    backend = ScriptedBackend([
        '{"user_preference": "likes  calm films.", "item_attributes": "a calm film."}',
        '{"user_preference": "x"}',  # invalid JSON for the schema: read as text, one sentence -> fallback
        "User preference: likes noir.\nItem attributes: a dark film.",  # not JSON, but labelled lines
    ])
    result = distill_rationales(rows, kind, tiny_items(), cached(backend, tmp_path), SamplingParams(max_tokens=48),
                                BUDGETS, 100, "json_schema")
    assert backend.requests[0].response_schema == RationaleAnswer.model_json_schema()
    assert '"user_preference"' in backend.requests[0].messages[2].content  # the worked example is JSON too
    assert result.table["source"].tolist() == ["llm", "fallback", "llm"]
    assert result.table.loc[0, "user_preference"] == "likes calm films."
    assert result.forms == {"fallback": 1, "json": 1, "lines": 1}
