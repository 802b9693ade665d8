"""The reference recipe's options of the traces stage: hard rows from a named scores file
(`traces.hard_scores`), no round limit (`traces.max_rounds: null`, with its safety cap) and rows
kept with the bare label (`traces.unverified: keep_label`); their defaults change nothing."""
import json

import numpy as np
import pandas as pd
import pytest
from params_base import section
from scripted_backend import ScriptedBackend, cached
from test_traces import SAMPLING, new_case, run_traces_stage, teacher

import stages.traces
from pipeline.artifacts import read_frame, write_frame
from pipeline.errors import BadParams, run_stage
from pipeline.params import load_section
from pipeline.schemas import PREDICTIONS, TRACES
from pipeline.traces.prompt import HINTS
from pipeline.traces.verification import (
    HINT_CYCLES_WITHOUT_LIMIT,
    VERIFIED,
    WRONG,
    round_limit,
    run_verification,
    traces_table,
    verification_stats,
)

SCORES = "scores/collm_train.parquet"  # an LLM's scores of the train split, written by no stage


def candidates(interactions: pd.DataFrame) -> pd.DataFrame:
    """The train rows hard selection draws from (TRACE_PARAMS: min_history 3)."""
    train = interactions[interactions["split"] == "train"]
    return train[train["history_items"].map(len) >= 3]


def write_scores(root, frame: pd.DataFrame, scores) -> None:
    write_frame(frame[["row", "user", "item"]].assign(score=np.asarray(scores, np.float32)), root / SCORES, PREDICTIONS)


def read_outputs(root):
    traces = read_frame(root / stages.traces.OUTPUT, TRACES)
    gold = read_frame(root / stages.traces.GOLD_OUTPUT, TRACES)
    return traces, gold, json.loads((root / stages.traces.METRICS).read_text())


def llm_scores(interactions: pd.DataFrame) -> tuple[np.ndarray, set[int]]:
    """Raw Yes logits for every row, on the right side of 0.5 except for 9 candidate rows that the
    CF predictions of run_traces_stage get right; rows 0.3 away from 0.5, all above 0 (so a 0
    threshold reads every row as Yes). Returns (scores, rows wrong at 0.5)."""
    pool = candidates(interactions)
    wrong = set(pool["row"].iloc[-9:])  # run_traces_stage's CF mistakes are the first 10
    right = np.where(interactions["label"] == 1, 0.8, 0.2)
    scores = np.where(interactions["row"].isin(wrong), 1.0 - right, right)
    return scores, wrong


def test_hard_rows_from_a_named_scores_file_are_exactly_its_train_mistakes(tmp_path, monkeypatch):
    interactions, cf_wrong = run_traces_stage(tmp_path, monkeypatch, ScriptedBackend(teacher), count=50)
    scores, wrong = llm_scores(interactions)
    assert not wrong & cf_wrong
    write_scores(tmp_path, interactions, scores)  # every row: valid and test ones are ignored

    write_params_over(tmp_path, hard_scores=SCORES, score_threshold=0.5)  # the reference's cut
    stages.traces.main()
    traces, _, metrics = read_outputs(tmp_path)
    assert set(traces["row"]) == wrong  # the teacher verifies every row within two rounds
    selection = metrics["selection"]
    assert (selection["selected"], selection["score_threshold"], selection["hard_scores"]) == (9, 0.5, SCORES)
    assert "cf_model" not in selection and len(selection["hard_scores_sha256"]) == 64

    # the threshold applies to this source too: at 0 every row reads as Yes, so the mistakes are
    # exactly the disliked candidates
    write_params_over(tmp_path, hard_scores=SCORES, score_threshold=0.0)
    stages.traces.main()
    traces, _, _ = read_outputs(tmp_path)
    pool = candidates(interactions)
    disliked = set(pool.loc[pool["label"] == 0, "row"])
    assert len(disliked) < 50 and set(traces["row"]) == disliked


def test_the_named_file_with_the_cf_scores_selects_what_the_default_selects(tmp_path, monkeypatch):
    run_traces_stage(tmp_path, monkeypatch, ScriptedBackend(teacher))
    default, default_gold, metrics = read_outputs(tmp_path)
    assert metrics["selection"]["cf_model"] == "mf" and "hard_scores" not in metrics["selection"]
    write_params_over(tmp_path, hard_scores="data/predictions/mf.parquet")
    stages.traces.main()
    named, named_gold, _ = read_outputs(tmp_path)
    pd.testing.assert_frame_equal(named, default)
    pd.testing.assert_frame_equal(named_gold, default_gold)


def stage_error(capsys) -> str:
    """Run the stage as its CLI does; return its one error line (exit status 2)."""
    with pytest.raises(SystemExit) as exited:
        run_stage(stages.traces.main)
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    return err


def test_a_missing_or_insufficient_scores_file_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    interactions, _ = run_traces_stage(tmp_path, monkeypatch, ScriptedBackend(teacher))
    capsys.readouterr()
    write_params_over(tmp_path, hard_scores=SCORES)
    assert stage_error(capsys).startswith(f"stages.traces: error: traces.hard_scores: {SCORES} not found")

    # an LLM's predictions file as the reported variants write it: valid and test rows only
    evaluation = interactions[interactions["split"] != "train"]
    write_scores(tmp_path, evaluation, np.zeros(len(evaluation)))
    pool = candidates(interactions)
    err = stage_error(capsys)
    assert err.startswith(f"stages.traces: error: traces.hard_scores: {SCORES}: scores 0 of the {len(pool)} "
                          f"candidate training rows (first unscored: row {pool['row'].min()})")

    # one candidate row missing: still an error, not a silently smaller pool
    last = pool["row"].max()
    write_scores(tmp_path, interactions[interactions["row"] != last], np.zeros(len(interactions) - 1))
    assert f"scores {len(pool) - 1} of the {len(pool)} candidate training rows (first unscored: row {last})" in stage_error(capsys)

    # scored on another ingest: a row's user or item differs
    other = interactions.assign(item=np.where(interactions["row"] == last, 99, interactions["item"]))
    write_scores(tmp_path, other, np.zeros(len(other)))
    assert f"{SCORES}: row {last} is user" in stage_error(capsys)

    write_frame(interactions[["row", "user", "item"]], tmp_path / SCORES)  # no score column
    assert stage_error(capsys).startswith(f"stages.traces: error: traces.hard_scores: {SCORES}: missing column 'score'")


def write_params_over(root, **traces) -> None:
    """params.yaml of run_traces_stage with `traces` keys changed (the stage re-reads it)."""
    import yaml

    params = yaml.safe_load((root / "params.yaml").read_text())
    params["traces"].update(traces)
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def late_teacher(right_at: int):
    """Answers No (with reasoning) until its `right_at`-th answer of a conversation, then Yes."""
    def answer(request):
        n = sum(m.role == "assistant" for m in request.messages) + 1
        verdict = "Yes" if n >= right_at else "No"
        return f"Answer {n}: the user's history of comedies decides it. Answer: {verdict}"
    return answer


def test_no_round_limit_keeps_a_row_the_teacher_verifies_on_round_five(tmp_path):
    assert round_limit(None) == 1 + HINT_CYCLES_WITHOUT_LIMIT * len(HINTS) == 10 and round_limit(3) == 3
    backend = ScriptedBackend(late_teacher(5))
    capped = new_case(label=1)
    run_verification([capped], cached(backend, tmp_path / "a"), SAMPLING, max_rounds=3)
    assert (capped.outcome, capped.rounds) == (WRONG, 3) and traces_table([capped]).empty

    backend = ScriptedBackend(late_teacher(5))
    case = new_case(label=1)
    run_verification([case], cached(backend, tmp_path / "b"), SAMPLING, max_rounds=None)
    assert (case.outcome, case.rounds) == (VERIFIED, 5) and len(backend.requests) == 5
    hints = [m.content for m in backend.requests[-1].messages if m.role == "user"][1:]
    assert hints == [HINTS[i % len(HINTS)].format(label="Yes") for i in range(4)]  # rotating past the last one
    table = traces_table([case])
    assert table["trace"].tolist() == ["Yes. Answer 5: the user's history of comedies decides it."]
    assert table["rounds"].tolist() == [5]
    stats = verification_stats([case], max_rounds=None)
    assert stats["round_limit"] == 10 and stats["rounds_histogram"]["5"] == 1 and len(stats["rounds_histogram"]) == 10


def test_the_safety_cap_stops_a_teacher_that_never_verifies(tmp_path):
    backend = ScriptedBackend(late_teacher(10**6))
    case = new_case(label=1)
    run_verification([case], cached(backend, tmp_path), SAMPLING, max_rounds=None)
    assert (case.outcome, case.rounds) == (WRONG, 10) and len(backend.requests) == 10
    stats = verification_stats([case], max_rounds=None)
    assert (stats["round_limit"], stats["outcomes"], stats["kept"], stats["kept_label"]) == (10, {"never_right": 1}, 0, 0)
    assert verification_stats([case], max_rounds=None, keep_label=True)["kept_label"] == 1


def test_keep_label_writes_the_bare_label_for_rows_that_never_verify(tmp_path, monkeypatch):
    # the teacher says Yes first and agrees after a hint: with one round the disliked rows never verify
    interactions, _ = run_traces_stage(tmp_path, monkeypatch, ScriptedBackend(teacher), max_rounds=1, unverified="keep_label")
    traces, gold, metrics = read_outputs(tmp_path)
    liked = traces[traces["label"] == 1]
    disliked = traces[traces["label"] == 0]
    assert len(traces) == 6 and len(liked) and len(disliked)
    assert (disliked["trace"] == "No. ").all() and (disliked["rounds"] == 1).all()
    assert (liked["trace"] == "Yes. The user liked films of this genre before.").all() and (liked["rounds"] == 1).all()
    counts = metrics["traces"]
    assert (counts["kept"], counts["kept_label"], counts["written"]) == (len(liked), len(disliked), 6)
    assert counts["written_by_label"] == {"0": len(disliked), "1": len(liked)}
    assert counts["outcomes"] == {"never_right": len(disliked), "verified": len(liked)}
    assert metrics["gold"]["kept_label"] == 0 and (gold["trace"].str.len() > 5).all()  # gold rows still drop

    # a teacher that never states a verdict: every training row written with its label, no gold row
    other = tmp_path / "never"  # a cache of its own
    run_traces_stage(other, monkeypatch, ScriptedBackend(lambda request: "The history is mixed and hard to read."),
                     unverified="keep_label", ask_verdict=False)
    traces, gold, metrics = read_outputs(other)
    assert traces["trace"].tolist() == traces["label"].map({1: "Yes. ", 0: "No. "}).tolist()
    assert (traces["rounds"] == 3).all() and gold.empty
    assert (metrics["traces"]["kept"], metrics["traces"]["kept_label"], metrics["traces"]["written"]) == (0, 6, 6)


def test_the_defaults_keep_what_they_did(tmp_path, monkeypatch):
    params = section("traces")
    assert (params["hard_scores"], params["max_rounds"], params["unverified"]) == (None, 3, "drop")
    # the same teacher, explicitly unbounded: it verifies within two rounds, so the same traces
    run_traces_stage(tmp_path, monkeypatch, ScriptedBackend(teacher))
    default, default_gold, metrics = read_outputs(tmp_path)
    assert (metrics["traces"]["round_limit"], metrics["traces"]["kept_label"]) == (3, 0)
    write_params_over(tmp_path, max_rounds=None)
    stages.traces.main()
    unbounded, unbounded_gold, _ = read_outputs(tmp_path)
    pd.testing.assert_frame_equal(unbounded, default)
    pd.testing.assert_frame_equal(unbounded_gold, default_gold)


@pytest.mark.parametrize(("key", "value", "why"), [
    ("max_rounds", 0, "traces.max_rounds: Input should be greater than or equal to 1"),
    ("unverified", "keep", "traces.unverified: Input should be 'drop' or 'keep_label'"),
    ("hard_scores", "", "traces.hard_scores: String should have at least 1 character"),
])
def test_invalid_values_name_the_key(tmp_path, monkeypatch, key, value, why):
    import yaml

    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"traces": section("traces", **{key: value})}))
    with pytest.raises(BadParams, match=why):
        load_section("traces", stages.traces.TraceParams, tmp_path / "params.yaml")
