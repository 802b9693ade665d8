"""The verification loop, row selection, answer reading, and the traces stage from its CLI."""
import json
import re

import pandas as pd
import pytest
from scripted_backend import ScriptedBackend, cached
from tiny_ingest import (
    tiny_interactions, tiny_items, write_cf_selection, write_params, write_predictions, write_tiny_ingest,
)

import stages.traces
import stages.teacher
from pipeline.artifacts import read_frame, write_frame
from pipeline.llm.chat import ChatMessage, SamplingParams
from pipeline.rec.examples import build_catalog
from pipeline.rec.prompts import get_template, render_prompt
from pipeline.schemas import ITEM_KEYWORDS, TRACES
from pipeline.traces.prompt import ANSWER_LINE, HINTS, INSTRUCTION, LEADING, NO_VERDICT, VERDICT_QUESTION, read_answer
from pipeline.traces.selection import score_threshold, select_gold_rows, select_trace_rows
from pipeline.traces.verification import (
    NO_REASONING,
    VERIFIED,
    WRONG,
    TraceCase,
    balance_labels,
    run_verification,
    traces_table,
)

SAMPLING = SamplingParams(max_tokens=160)


def new_case(row=7, label=1):
    return TraceCase(row=row, label=label, messages=[ChatMessage(role="user", content=f"Will they like item {row}?")])


def test_wrong_wrong_right_takes_three_rounds_with_rotating_hints(tmp_path):
    answers = [
        "The user dislikes old films.\nAnswer: No",
        "Still, the history shows no comedy.  Answer: No",
        "The user liked three comedies in a row,\n so this comedy fits.\nAnswer: Yes",
    ]
    backend = ScriptedBackend(answers)
    case = new_case(label=1)
    run_verification([case], cached(backend, tmp_path), SAMPLING, max_rounds=3)
    assert case.outcome == VERIFIED and case.rounds == 3
    last = backend.requests[-1].messages  # question, answer 1, hint 1, answer 2, hint 2
    assert [m.role for m in last] == ["user", "assistant", "user", "assistant", "user"]
    assert last[1].content == answers[0] and last[3].content == answers[1]
    assert last[2].content == HINTS[0].format(label="Yes")
    assert last[4].content == HINTS[1].format(label="Yes")
    assert last[2].content != last[4].content and "Yes" in last[2].content
    assert case.trace == "Yes. The user liked three comedies in a row, so this comedy fits."
    table = traces_table([case])
    assert table.loc[0, "rounds"] == 3 and table.loc[0, "trace"].startswith("Yes. ")
    assert table.loc[0, "tokens_out"] == sum(len(a.split()) for a in answers)


def test_row_that_is_never_right_is_dropped(tmp_path):
    backend = ScriptedBackend(lambda request: "The user hates this genre. Answer: Yes")
    kept, lost = new_case(row=1, label=1), new_case(row=2, label=0)
    run_verification([kept, lost], cached(backend, tmp_path), SAMPLING, max_rounds=2)
    assert lost.outcome == WRONG and lost.rounds == 2 and lost.trace is None
    assert kept.rounds == 1
    assert traces_table([kept, lost])["row"].tolist() == [1]
    assert len(backend.requests) == 3  # two rows in round 1, only the wrong one in round 2


def test_loop_stops_when_no_reasoning_comes_back(tmp_path):
    backend = ScriptedBackend(["Answer: No", "should never be asked"])
    case = new_case(label=1)
    run_verification([case], cached(backend, tmp_path), SAMPLING, max_rounds=3)
    assert case.outcome == NO_REASONING and case.rounds == 1
    assert len(backend.requests) == 1 and traces_table([case]).empty


@pytest.mark.parametrize(
    "text, verdict, form, reasoning",
    [
        ("Yes. The user loves horror films.", 1, LEADING, "The user loves horror films."),
        ("The user loves horror films.\nAnswer: Yes", 1, ANSWER_LINE, "The user loves horror films."),
        ("The user liked three comedies.\n\n**Answer:** No", 0, ANSWER_LINE, "The user liked three comedies."),
        ("**No**, the user disliked every drama so far.", 0, LEADING, "the user disliked every drama so far."),
        ("Yes\nThe user liked three comedies.", 1, LEADING, "The user liked three comedies."),
        # SmolLM2-135M prose: a yes/no inside the text is no verdict
        ("There is no comedy in the history, so the user will skip it.", None, NO_VERDICT, None),
        ("User preference for Apollo 13 is yes; they would love to see it in action!", None, NO_VERDICT, None),
        ("No comedy appears in the user's history at all.", None, NO_VERDICT, None),
        ("Yes. The user", None, NO_VERDICT, "The user"),  # a leading verdict needs reasoning after it
        ("Yes", None, NO_VERDICT, ""),
        ("Answer: No doubt the user likes it.", None, NO_VERDICT, None),
        ("The user may like it. 'Answer: Yes' or 'Answer: No'", None, NO_VERDICT, None),  # disagree
        ("No. The user dislikes war films.\nAnswer: Yes", None, NO_VERDICT, "The user dislikes war films."),
        ("Yes. The user likes war films.\nAnswer: Yes", 1, ANSWER_LINE, "The user likes war films."),
        ('The user liked Ed Wood comedies. Answer "Yes" for the user.', 1, ANSWER_LINE,
         "The user liked Ed Wood comedies. for the user."),  # SmolLM2 quotes its verdict
        ("The user dislikes it. Answer \u201cNo\u201d.", 0, ANSWER_LINE, "The user dislikes it."),
        ("I cannot answer yes or no about this user.", None, NO_VERDICT, None),
    ],
)
def test_read_answer_counts_only_explicit_verdicts(text, verdict, form, reasoning):
    answer = read_answer(text, min_reasoning_words=3)
    assert (answer.verdict, answer.form) == (verdict, form)
    if reasoning is not None:
        assert answer.reasoning == reasoning


def test_read_answer_with_a_reasoning_field_reads_the_final_text():
    separate = read_answer("Yes", reasoning_field="The user\n liked  similar films.", min_reasoning_words=3)
    assert (separate.verdict, separate.form, separate.reasoning) == (1, LEADING, "The user liked similar films.")
    assert read_answer("**Answer: No**", reasoning_field="Dislikes dramas.").form == ANSWER_LINE
    assert read_answer("I would say the user does not", reasoning_field="Long thinking.").verdict is None


def test_prose_with_a_stray_no_is_never_verified(tmp_path):
    """The old reader took the last standalone yes/no: this teacher would have been 'right' for label 0."""
    backend = ScriptedBackend(lambda request: "The user watched dramas, and there is no comedy here, so no")
    case = new_case(label=0)
    run_verification([case], cached(backend, tmp_path), SAMPLING, max_rounds=2)
    assert case.outcome == WRONG and case.forms == [NO_VERDICT, NO_VERDICT] and traces_table([case]).empty


def test_hard_selection_takes_only_cf_mistakes():
    frame = tiny_interactions()
    train = frame[frame["split"] == "train"]
    wrong = set(train["row"].iloc[[3, 5, 8, 13]])
    right = frame["label"].map({1: 2.0, 0: -2.0})
    predictions = frame[["row"]].assign(score=right.where(~frame["row"].isin(wrong), -right))
    chosen = select_trace_rows(train, "hard", 10, seed=1, min_history=0, predictions=predictions, threshold=0.0)
    assert set(chosen["row"]) == wrong
    assert len(select_trace_rows(train, "hard", 2, 1, 0, predictions, 0.0)) == 2
    probabilities = predictions.assign(score=1 / (1 + pow(2.718, -predictions["score"])))
    assert score_threshold(probabilities["score"], None) == 0.5
    assert score_threshold(predictions["score"], None) == 0.0
    chosen_p = select_trace_rows(train, "hard", 10, 1, 0, probabilities, 0.5)
    assert set(chosen_p["row"]) == wrong
    unscored = predictions[predictions["row"] != sorted(wrong)[0]]  # skipped, not an error
    assert set(select_trace_rows(train, "hard", 10, 1, 0, unscored, 0.0)["row"]) == wrong - {sorted(wrong)[0]}
    with pytest.raises(ValueError, match="preds.parquet: no score for any"):
        select_trace_rows(train, "hard", 10, 1, 0, predictions.iloc[:0], 0.0, "preds.parquet")


def test_random_and_per_label_selection():
    train = tiny_interactions(n_users=6)
    train = train[train["split"] == "train"]
    rows = select_trace_rows(train, "random", 7, seed=3, min_history=2)
    assert len(rows) == 7 and rows["row"].is_monotonic_increasing
    assert (rows["history_items"].map(len) >= 2).all()
    assert rows["row"].tolist() == select_trace_rows(train, "random", 7, 3, 2)["row"].tolist()
    per_label = select_trace_rows(train, "per_label", 4, seed=3)
    assert per_label["label"].value_counts().to_dict() == {1: 4, 0: 4}


def test_gold_rows_have_full_history_and_half_liked():
    frame = tiny_interactions(n_users=8, per_user=14)
    test = frame[frame["split"] == "test"]
    chosen = select_gold_rows(test, count=6, history=10, seed=0)
    assert len(chosen) == 6 and (chosen["history_items"].map(len) >= 10).all()
    pool = test[test["history_items"].map(len) >= 10]
    assert (len(pool), pool["label"].sum()) == (16, 5)  # 5 liked, 11 disliked rows to choose from
    assert chosen["label"].sum() == 3  # half liked
    more = select_gold_rows(test, count=14, history=10, seed=0)
    assert len(more) == 14 and more["label"].sum() == 5  # every liked row, the rest disliked


def teacher(request):
    """Says Yes first; after a hint, agrees with the label the hint names."""
    last = request.messages[-1].content
    if len(request.messages) > 2:
        label = "Yes" if "answer is Yes" in last else "No"
        return f"Looking again, the history points the other way. Answer: {label}"
    return "The user liked films of this genre before. Answer: Yes"


PROMPT = {"version": "v1", "history_items": 3, "title_words": 2, "keywords_per_item": 1, "max_answer_tokens": 64}
TRACE_PARAMS = {"selection": "hard", "count": 6, "score_threshold": None, "min_history": 3, "max_rounds": 3,
                "max_tokens": 64, "repetition_penalty": 1.0, "min_reasoning_words": 3, "ask_verdict": True, "balance_labels": False,
                "seed": 5, "gold": {"count": 4}}


def run_traces_stage(root, monkeypatch, backend, prompt=PROMPT, **overrides):
    """Write tiny ingest + keywords + CF predictions + params under `root`, run the stage's main()."""
    interactions = write_tiny_ingest(root, n_users=8)
    keywords = pd.DataFrame({"item": range(11), "keywords": [[f"theme{i}", f"mood{i}"] for i in range(11)],
                             "source": "llm"})  # item 11 has none: its genres stand in
    write_frame(keywords, root / stages.traces.KEYWORDS, ITEM_KEYWORDS)
    train = interactions[interactions["split"] == "train"]
    wrong = set(train.loc[train["history_items"].map(len) >= 3, "row"].iloc[:10])
    write_predictions(root, interactions, wrong)
    write_cf_selection(root, "mf")
    write_params(root, cf={"model": "mf"}, traces={**TRACE_PARAMS, **overrides},
                 rec={"backbone": "unused", "prompt": prompt, "lora": {"r": 4}})  # lora: not the stage's
    monkeypatch.chdir(root)
    monkeypatch.setattr(stages.teacher, "build_backend", lambda config: backend)
    stages.traces.main()
    return interactions, wrong


def test_traces_stage_cli(tmp_path, monkeypatch):
    backend = ScriptedBackend(teacher)
    interactions, wrong = run_traces_stage(tmp_path, monkeypatch, backend)
    traces = read_frame(tmp_path / stages.traces.OUTPUT, TRACES)
    gold = read_frame(tmp_path / stages.traces.GOLD_OUTPUT, TRACES)
    metrics = json.loads((tmp_path / stages.traces.METRICS).read_text())
    assert set(traces["row"]) <= wrong and len(traces) == 6
    assert (traces["rounds"] == traces["label"].map({1: 1, 0: 2})).all()
    prefixes = traces["label"].map({1: "Yes. ", 0: "No. "})
    assert all(trace.startswith(prefix) for trace, prefix in zip(traces["trace"], prefixes))
    assert metrics["selection"]["score_threshold"] == 0.0
    labels = interactions.set_index("row").loc[traces["row"], "label"]
    n_yes, n_no = int(labels.sum()), int((labels == 0).sum())
    assert metrics["traces"]["rounds_histogram"] == {"1": n_yes, "2": n_no, "3": 0}
    assert metrics["traces"]["kept_fraction"] == 1.0
    assert metrics["traces"]["kept_by_label"] == metrics["traces"]["written_by_label"] == {"0": n_no, "1": n_yes}
    # every answer of this teacher ends in an answer line: 6 first answers + one more per No row
    assert metrics["traces"]["verdict_forms"] == {"answer_line": 6 + n_no, "leading": 0, "asked": 0, "none": 0}
    assert metrics["traces"]["verdict_questions"] == 0  # nothing to ask: every answer stated its verdict
    assert metrics["traces"]["dropped_for_balance"] == 0 and not metrics["traces"]["balance_labels"]
    assert len(gold) == 4 and gold["row"].isin(interactions.loc[interactions["split"] == "test", "row"]).all()

    monkeypatch.setattr(stages.teacher, "build_backend", lambda config: ScriptedBackend([]))
    stages.traces.main()  # a re-run is answered entirely from the cache
    rerun = json.loads((tmp_path / stages.traces.METRICS).read_text())
    assert rerun["llm"]["calls"] == 0 and rerun["llm"]["hit_rate"] == 1.0
    pd.testing.assert_frame_equal(read_frame(tmp_path / stages.traces.OUTPUT, TRACES), traces)


def unsure_teacher(request):
    """Reasons but never states a verdict; asked, says No, or after a hint the label it names."""
    if request.messages[-1].content != VERDICT_QUESTION:
        return "The user liked films of this genre before, and this one is similar."
    hints = [m.content for m in request.messages if m.content.startswith("That is not right")]
    return "Yes." if hints and "answer is Yes" in hints[-1] else "No"


def test_traces_stage_asks_for_missing_verdicts(tmp_path, monkeypatch):
    backend = ScriptedBackend(unsure_teacher)
    interactions, _ = run_traces_stage(tmp_path, monkeypatch, backend)
    traces = read_frame(tmp_path / stages.traces.OUTPUT, TRACES)
    metrics = json.loads((tmp_path / stages.traces.METRICS).read_text())
    n_no = int((traces["label"] == 0).sum())
    assert len(traces) == 6 and (traces["rounds"] == traces["label"].map({1: 2, 0: 1})).all()
    assert metrics["traces"]["verdict_forms"] == {"answer_line": 0, "leading": 0, "asked": 6 + (6 - n_no), "none": 0}
    assert metrics["traces"]["verdict_questions"] == 6 + (6 - n_no)  # one per answer
    assert metrics["traces"]["teacher_calls"] == 2 * (6 + 6 - n_no)
    gold = metrics["gold"]
    assert gold["kept"] == 4 and gold["kept_verdict_forms"]["asked"] == 4
    assert metrics["llm"]["calls"] == len(backend.requests) == metrics["traces"]["teacher_calls"] + gold["teacher_calls"]
    assert sum(r.sampling.max_tokens == 3 for r in backend.requests) == metrics["traces"]["verdict_questions"] + gold["verdict_questions"]

    monkeypatch.setattr(stages.teacher, "build_backend", lambda config: ScriptedBackend([]))
    stages.traces.main()  # the verdict questions are cached too
    assert json.loads((tmp_path / stages.traces.METRICS).read_text())["llm"]["calls"] == 0
    pd.testing.assert_frame_equal(read_frame(tmp_path / stages.traces.OUTPUT, TRACES), traces)


def test_teacher_sees_exactly_the_students_prompt(tmp_path, monkeypatch):
    backend = ScriptedBackend(teacher)
    interactions, _ = run_traces_stage(tmp_path, monkeypatch, backend)
    by_row = interactions.set_index("row")
    gold = read_frame(tmp_path / stages.traces.GOLD_OUTPUT, TRACES)
    catalog = build_catalog(tiny_items(), read_frame(tmp_path / stages.traces.KEYWORDS, ITEM_KEYWORDS), 2, 1)
    first_questions = [r.messages[1].content for r in backend.requests if len(r.messages) == 2]
    assert len(first_questions) == 6 + 4  # traced rows + gold rows, each asked once from scratch
    for row in gold["row"]:
        r = by_row.loc[row]
        history = [(catalog[int(i)], int(v)) for i, v in zip(r.history_items[-3:], r.history_labels[-3:])]
        student = render_prompt(get_template("v1"), history, catalog[int(r["item"])], with_slots=False)[1]
        assert f"{student}\n\n{INSTRUCTION}" in first_questions
    for question in first_questions:
        lines = question.split("\n")
        history_lines = [line for line in lines if line.startswith("- ")]
        assert len(history_lines) == 3  # rec.prompt.history_items, not more
        # titles cut to 2 words ("Film Number 7" -> "Film Number"), one keyword, genres for item 11
        assert all(re.fullmatch(r"- Film Number \[(theme\d+|comedy|drama|action|horror|romance)\]: (liked|not liked)",
                                line, re.IGNORECASE) for line in history_lines), history_lines
        assert not re.search(r"Film Number \d", question) and "mood" not in question


def test_gold_rows_need_the_students_history_length(tmp_path, monkeypatch):
    backend = ScriptedBackend(teacher)
    # test rows have 12 or 13 earlier interactions (per_user 14): only the 13s qualify
    interactions, _ = run_traces_stage(tmp_path, monkeypatch, backend, prompt={**PROMPT, "history_items": 13})
    gold = read_frame(tmp_path / stages.traces.GOLD_OUTPUT, TRACES)
    histories = interactions.set_index("row").loc[gold["row"], "history_items"].map(len)
    assert len(gold) == 4 and (histories == 13).all()
    first_questions = [r.messages[1].content for r in backend.requests if len(r.messages) == 2]
    shown = [q.count("\n- ") for q in first_questions]  # history lines per first question
    assert shown.count(13) == 4 and max(shown) == 13  # the 4 gold rows show 13 items; train rows fewer


def test_balance_labels_keeps_as_many_yes_as_no(tmp_path, monkeypatch):
    interactions, wrong = run_traces_stage(tmp_path, monkeypatch, ScriptedBackend(teacher), count=10,
                                           balance_labels=True)
    traces = read_frame(tmp_path / stages.traces.OUTPUT, TRACES)
    metrics = json.loads((tmp_path / stages.traces.METRICS).read_text())["traces"]
    kept = metrics["kept_by_label"]
    assert kept["0"] != kept["1"] and min(kept.values()) > 0  # the tiny data's mistakes are unbalanced
    assert metrics["written_by_label"] == {"0": min(kept.values()), "1": min(kept.values())}
    assert traces["label"].value_counts().to_dict() == {0: min(kept.values()), 1: min(kept.values())}
    assert metrics["dropped_for_balance"] == abs(kept["0"] - kept["1"]) == metrics["kept"] - len(traces)
    stages.traces.main()  # same seed, same cache: the same rows are dropped
    pd.testing.assert_frame_equal(read_frame(tmp_path / stages.traces.OUTPUT, TRACES), traces)


def test_balance_labels_is_seeded():
    table = pd.DataFrame({"row": range(10), "label": [1, 1, 1, 1, 1, 1, 1, 0, 0, 1]})
    balanced, dropped = balance_labels(table, seed=0)
    assert dropped == 6 and balanced["label"].tolist().count(1) == 2 and balanced["row"].is_monotonic_increasing
    assert balanced.equals(balance_labels(table, seed=0)[0])
    assert {0, 1} <= {bool(balance_labels(table, seed=s)[0]["row"].isin([0]).any()) for s in range(20)}
    assert balance_labels(table[table["label"] == 1], seed=0)[0].empty  # no No trace: nothing to pair with
