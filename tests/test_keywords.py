"""Keyword cleaning, the fallback, and the keywords stage from its CLI entry point."""
import json

import pandas as pd
import pytest
from params_base import section
from scripted_backend import ScriptedBackend, cached
from tiny_ingest import tiny_items, write_params, write_tiny_ingest

import stages.keywords
import stages.teacher
from pipeline.artifacts import read_frame, write_frame
from pipeline.keywords.cleaning import clean_keywords, fallback_keywords
from pipeline.keywords.item_text import WordBudgets, cut_words, item_text
from pipeline.keywords.summarize import most_interacted_items, summarize_items
from pipeline.llm.chat import SamplingParams
from pipeline.schemas import INTERACTIONS, ITEM_KEYWORDS

BUDGETS = WordBudgets(**section("keywords.budgets"))


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("comedy, family, toys", ["comedy", "family", "toys"]),
        ("Keywords: Comedy, the family, 1995, of, an", ["comedy", "family"]),  # lead-in, stopwords, numbers
        ("1. space\n2. war\n3. galaxy", ["space", "war", "galaxy"]),  # numbered lines
        ("- heist\n* vault\n\u2022 getaway", ["heist", "vault", "getaway"]),  # bullets
        ("Comedy, comedy, COMEDY, drama", ["comedy", "drama"]),  # duplicates, case-insensitive
        ("Sure, here are the keywords: heist, crime", ["heist", "crime"]),  # filler
        ("Sure, here is a list of keywords, heist", ["heist"]),  # a piece of filler and stopwords only
        ("ab, xy, to, spy", ["spy"]),  # words under 3 characters
        ("The movie is about a group of friends who travel far away, road", ["road"]),  # sentence
        ("", []),
        # per keyword: inner stopwords stay, edge stopwords go, one filler word keeps its keyword
        ("the lord of the rings, middle earth, the fellowship of the ring",
         ["lord of the rings", "middle earth", "fellowship of the ring"]),
        ("title fight, collectible item, boxing", ["title fight", "collectible item", "boxing"]),
        ("tv show, x, 1990s, the, of the", ["tv show"]),
        ("devil\u2019s advocate, children\u2019s entertainment", ["devil's advocate", "children's entertainment"]),
        # SmolLM2-135M answers (keywords prompt, ML-100k items)
        ("mask the, comedy, crime, fantasy, horror, dark humor, shadowy figure in darkness; mask-making,",
         ["mask", "comedy", "crime", "fantasy", "horror", "dark humor", "shadowy figure in darkness", "mask-making"]),
        ("star trek the motion picture , action movie , adventure film , sci fi thriller .",
         ["star trek the motion picture", "action movie", "adventure film", "sci fi thriller"]),
        ("The story of the chain reaction is one that has been widely referenced in various forms across "
         "different cultures throughout history as it relates", []),
        ("Annie Hall, comedy drama, romance story of the life of Oscar Wilde in England during the early 20th",
         ["annie hall", "comedy drama"]),
    ],
)
def test_clean_keywords_cases(answer, expected):
    assert clean_keywords(answer) == expected


def test_clean_keywords_keeps_at_most_max():
    answer = ", ".join(f"word{chr(97 + i)}" for i in range(15))
    assert clean_keywords(answer) == [f"word{chr(97 + i)}" for i in range(10)]
    assert len(clean_keywords(answer, max_keywords=3)) == 3


def test_item_text_cuts_each_field_to_its_budget():
    budgets = WordBudgets(title=2, categories=5, description=3, extra=1)
    text = item_text("A Very Long Title", ["Drama", "War"], "one two three four five", "", budgets)
    assert text == "Title: A Very\nCategories: Drama, War\nDescription: one two three"
    assert cut_words("  a   b c ", 2) == "a b"


def test_fallback_to_categories_is_counted(tmp_path):
    items = tiny_items(3)
    answers = ["heist, crime caper, vault", "Sorry, I cannot help with that.", "ok"]
    result = summarize_items(items, cached(ScriptedBackend(answers), tmp_path), BUDGETS, SamplingParams(max_tokens=32))
    assert result.fallbacks == 2
    assert result.table["source"].tolist() == ["llm", "fallback", "fallback"]
    assert result.table["keywords"].iloc[0] == ["heist", "crime caper", "vault"]
    assert result.table["keywords"].iloc[1] == fallback_keywords(items["categories"].iloc[1])
    assert result.table["keywords"].iloc[1] == ["drama", "horror"]


def test_echoes_and_truncated_last_keyword_are_dropped(tmp_path):
    items = tiny_items(1)  # title "Film Number 0"
    answer = "film number, boiling water, satire, office politics, unfinis"
    backend = ScriptedBackend(lambda request: answer)
    # The scripted backend counts words as tokens: 8 words >= max_tokens 8 means "truncated".
    result = summarize_items(items, cached(backend, tmp_path), BUDGETS, SamplingParams(max_tokens=8))
    assert result.table["keywords"].iloc[0] == ["satire", "office politics"]


def test_echoes_of_the_title_are_dropped_however_it_is_written(tmp_path):
    items = tiny_items(2).assign(title=["Lord of the Rings, The", "Mask, The"])
    answers = {"Lord": "the lord of the rings, middle earth, lighthouse",  # "lighthouse": a worked example's
               "Mask": "mask the, comedy, crime, fantasy"}
    backend = ScriptedBackend(lambda request: answers[request.messages[-1].content.split()[1].strip(",")])
    result = summarize_items(items, cached(backend, tmp_path), BUDGETS, SamplingParams(max_tokens=32))
    assert result.table["keywords"].tolist() == [["middle earth"], ["comedy", "crime", "fantasy"]]


def test_keywords_stage_cli_writes_schema_and_rerun_hits_cache(tmp_path, monkeypatch):
    write_tiny_ingest(tmp_path)
    budgets = {"title": 10, "categories": 10, "description": 50, "extra": 5}
    write_params(tmp_path, keywords={"max_items": 1300, "max_keywords": 4, "max_tokens": 32,
                                     "repetition_penalty": 1.2, "min_keywords": 1, "budgets": budgets})
    monkeypatch.chdir(tmp_path)

    def answer(request):  # the last user turn names the item
        title = request.messages[-1].content.split("Title: ")[1].split("\n")[0]
        return "" if title.endswith("3") else f"{title.split()[-1]}th plot twist, suspense, rivalry, betrayal, fame"

    backends = []
    monkeypatch.setattr(stages.teacher, "build_backend", lambda config: backends.append(ScriptedBackend(answer)) or backends[-1])
    stages.keywords.main()
    table = read_frame(tmp_path / stages.keywords.OUTPUT, ITEM_KEYWORDS)
    metrics = json.loads((tmp_path / stages.keywords.METRICS).read_text())
    assert table["item"].tolist() == list(range(12))
    assert table["keywords"].map(len).max() == 4
    assert metrics["fallbacks"] == 1 and table.loc[3, "source"] == "fallback"
    assert metrics["fallback_fraction"] == metrics["category_keywords_fraction"] == 1 / 12  # every item asked
    assert metrics["llm"]["calls"] == 12 and metrics["llm"]["cache_hits"] == 0

    stages.keywords.main()  # same params, same items: every request is answered by the cache
    rerun = json.loads((tmp_path / stages.keywords.METRICS).read_text())
    assert rerun["llm"]["calls"] == 0 and rerun["llm"]["hit_rate"] == 1.0
    assert rerun["teacher"] == metrics["teacher"] and metrics["teacher"]["tokens_out"] == metrics["llm"]["tokens_out"] > 0
    assert len(backends[-1].requests) == 0
    pd.testing.assert_frame_equal(read_frame(tmp_path / stages.keywords.OUTPUT, ITEM_KEYWORDS), table)


def test_items_outside_the_budget_get_categories_without_a_call(tmp_path):
    interactions = pd.DataFrame({"item": [4, 4, 4, 2, 2, 9, 1]})
    ask = most_interacted_items(interactions, 2)
    assert ask == {4, 2}
    assert most_interacted_items(interactions, None) is None
    assert most_interacted_items(interactions, 5, items=range(6)) == {4, 2, 1, 9, 0}  # unseen items count 0
    backend = ScriptedBackend(lambda request: "satire, office politics")
    result = summarize_items(tiny_items(6), cached(backend, tmp_path), BUDGETS, SamplingParams(), ask=ask)
    assert len(backend.requests) == 2 and result.not_asked == 4 and result.fallbacks == 0
    assert result.table.set_index("item")["source"].to_dict() == {
        0: "fallback", 1: "fallback", 2: "llm", 3: "fallback", 4: "llm", 5: "fallback"}
    assert result.table.loc[4, "keywords"] == ["satire", "office politics"]


def test_stage_popularity_counts_training_rows_only(tmp_path, monkeypatch):
    interactions = write_tiny_ingest(tmp_path)
    top = int(interactions["item"].value_counts().sort_index().idxmax())  # most rows overall
    interactions.loc[interactions["item"] == top, "split"] = "test"  # ... but none of them in train
    write_frame(interactions, tmp_path / stages.keywords.INTERACTIONS_PATH, INTERACTIONS)
    write_params(tmp_path, keywords={"max_items": 3})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(stages.teacher, "build_backend", lambda config: ScriptedBackend(lambda r: "satire, office politics"))
    stages.keywords.main()
    table = read_frame(tmp_path / stages.keywords.OUTPUT, ITEM_KEYWORDS)
    asked = set(table.loc[table["source"] == "llm", "item"])
    assert asked == most_interacted_items(interactions[interactions["split"] == "train"], 3)
    assert top not in asked and len(asked) == 3
    metrics = json.loads((tmp_path / stages.keywords.METRICS).read_text())
    assert (metrics["items_not_asked"], metrics["fallback_fraction"], metrics["category_keywords_fraction"]) == (9, 0.0, 0.75)
