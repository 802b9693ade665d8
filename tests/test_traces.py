"""The verification loop, row selection, answer reading, and the traces stage from its CLI."""
import json

import pandas as pd
import pytest
from scripted_backend import ScriptedBackend, cached
from tiny_ingest import tiny_interactions, write_params, write_predictions, write_tiny_ingest

import stages.traces
import stages.teacher
from pipeline.artifacts import read_frame
from pipeline.llm.chat import ChatMessage, SamplingParams
from pipeline.schemas import TRACES
from pipeline.traces.prompt import HINTS, read_answer
from pipeline.traces.selection import score_threshold, select_reference_rows, select_trace_rows
from pipeline.traces.verification import NO_REASONING, VERIFIED, WRONG, TraceCase, run_verification, traces_table

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


def test_read_answer_forms():
    assert read_answer("Yes. The user loves horror films.") == read_answer("The user loves horror films. Answer: Yes")
    assert read_answer("**Answer:** No").verdict == 0
    separate = read_answer("Yes", reasoning_field="The user\n liked  similar films.")
    assert separate.verdict == 1 and separate.reasoning == "The user liked similar films."
    assert read_answer("I cannot tell.").verdict is None


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


def test_reference_rows_have_full_history_and_half_liked():
    frame = tiny_interactions(n_users=8, per_user=14)
    test = frame[frame["split"] == "test"]
    chosen = select_reference_rows(test, count=6, history=10, seed=0)
    assert len(chosen) == 6 and (chosen["history_items"].map(len) >= 10).all()
    pool = test[test["history_items"].map(len) >= 10]
    assert (len(pool), pool["label"].sum()) == (16, 5)  # 5 liked, 11 disliked rows to choose from
    assert chosen["label"].sum() == 3  # half liked
    more = select_reference_rows(test, count=14, history=10, seed=0)
    assert len(more) == 14 and more["label"].sum() == 5  # every liked row, the rest disliked


def teacher(request):
    """Says Yes first; after a hint, agrees with the label the hint names."""
    last = request.messages[-1].content
    if len(request.messages) > 2:
        label = "Yes" if "answer is Yes" in last else "No"
        return f"Looking again, the history points the other way. Answer: {label}"
    return "The user liked films of this genre before. Answer: Yes"


def test_traces_stage_cli(tmp_path, monkeypatch):
    interactions = write_tiny_ingest(tmp_path, n_users=8)
    train = interactions[interactions["split"] == "train"]
    wrong = set(train.loc[train["history_items"].map(len) >= 3, "row"].iloc[:10])
    write_predictions(tmp_path, interactions, wrong)
    write_params(
        tmp_path,
        cf={"model": "mf", "models": ["mf"]},
        traces={"selection": "hard", "count": 6, "score_threshold": None, "min_history": 3,
                "history_items": 10, "max_rounds": 3, "max_tokens": 64, "repetition_penalty": 1.0, "min_reasoning_words": 3,
                "seed": 5, "reference": {"count": 4, "history": 10}},
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(stages.teacher, "build_backend", lambda config: ScriptedBackend(teacher))
    stages.traces.main()
    traces = read_frame(tmp_path / stages.traces.OUTPUT, TRACES)
    reference = read_frame(tmp_path / stages.traces.REFERENCE_OUTPUT, TRACES)
    metrics = json.loads((tmp_path / stages.traces.METRICS).read_text())
    assert set(traces["row"]) <= wrong and len(traces) == 6
    assert (traces["rounds"] == traces["label"].map({1: 1, 0: 2})).all()
    prefixes = traces["label"].map({1: "Yes. ", 0: "No. "})
    assert all(trace.startswith(prefix) for trace, prefix in zip(traces["trace"], prefixes))
    assert metrics["selection"]["score_threshold"] == 0.0
    labels = interactions.set_index("row").loc[traces["row"], "label"]
    assert metrics["traces"]["rounds_histogram"] == {"1": int(labels.sum()), "2": int((labels == 0).sum()), "3": 0}
    assert metrics["traces"]["kept_fraction"] == 1.0
    assert len(reference) == 4 and reference["row"].isin(interactions.loc[interactions["split"] == "test", "row"]).all()

    monkeypatch.setattr(stages.teacher, "build_backend", lambda config: ScriptedBackend([]))
    stages.traces.main()  # a re-run is answered entirely from the cache
    rerun = json.loads((tmp_path / stages.traces.METRICS).read_text())
    assert rerun["llm"]["calls"] == 0 and rerun["llm"]["hit_rate"] == 1.0
    pd.testing.assert_frame_equal(read_frame(tmp_path / stages.traces.OUTPUT, TRACES), traces)
