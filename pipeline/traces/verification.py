"""The verification loop: ask, and while the teacher's verdict is wrong, show it a hint naming the
true label and ask again, up to a round limit (round_limit); keep the traces that end in the true
label, and optionally the rows that never did with the bare label as their trace. With
`ask_verdict`, an answer that reasons but states no verdict is followed, in the same conversation, by
VERDICT_QUESTION (one short request) whose Yes/No counts as that answer's verdict (form `asked`).

All rows still in play are sent together each round, so a batched backend answers a round in one
batch. Requests are a pure function of the row and the earlier (cached) answers, so a re-run is
answered entirely from the cache.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from pipeline.llm.chat import ChatMessage, ChatRequest, ChatResponse, SamplingParams
from pipeline.rec.prompts import PromptItem, PromptTemplate
from pipeline.traces.prompt import (
    ASKED,
    HINTS,
    VERDICT_FORMS,
    VERDICT_QUESTION,
    VERDICT_TOKENS,
    TeacherAnswer,
    hint_message,
    question_messages,
    read_answer,
    read_asked_verdict,
    stored_trace,
)
from pipeline.traces.selection import sample_rows

# How a row's loop ended.
VERIFIED, WRONG, NO_REASONING = "verified", "never_right", "no_reasoning"
# With no round limit (max_rounds None) a row still stops once it has been shown every hint this
# many times: the reference's loop has none, and a teacher that never names the true label would
# ask forever (1 + 3 * len(HINTS) = 10 answers).
HINT_CYCLES_WITHOUT_LIMIT = 3


@dataclass
class TraceCase:
    row: int
    label: int  # 1 = liked
    # The conversation so far: each answer (then its verdict question and the reply), a hint per wrong round.
    messages: list[ChatMessage]
    rounds: int = 0
    questions: int = 0  # verdict questions asked (calls besides the rounds)
    tokens_in: int = 0
    tokens_out: int = 0
    outcome: str | None = None
    trace: str | None = None
    history: list[str] = field(default_factory=list)  # every answer text, in order
    forms: list[str] = field(default_factory=list)  # each answer's verdict form (prompt.VERDICT_FORMS)


def make_cases(
    rows: pd.DataFrame, catalog: Mapping[int, PromptItem], template: PromptTemplate, n_history: int
) -> list[TraceCase]:
    """One case per row of `rows` (row, item, label, history_items, history_labels), in row order,
    asked over the student's rendering (catalog from pipeline.rec.examples.build_catalog)."""
    rows = rows.sort_values("row")
    cases = []
    for r in rows.itertuples(index=False):
        shown = list(r.history_items)[-n_history:] if n_history > 0 else []
        missing = [int(i) for i in [*shown, r.item] if int(i) not in catalog]
        if missing:
            raise KeyError(f"interactions row {int(r.row)}: item {missing[0]} not in items.parquet")
        messages = question_messages(r.history_items, r.history_labels, r.item, catalog, template, n_history)
        cases.append(TraceCase(row=int(r.row), label=int(r.label), messages=messages))
    return cases


def round_limit(max_rounds: int | None) -> int:
    """Teacher answers per row at most: `max_rounds`, or for None (no limit) the safety cap, the
    first answer plus every hint HINT_CYCLES_WITHOUT_LIMIT times."""
    return max_rounds if max_rounds is not None else 1 + HINT_CYCLES_WITHOUT_LIMIT * len(HINTS)


def run_verification(
    cases: list[TraceCase],
    client,
    sampling: SamplingParams,
    max_rounds: int | None,
    min_reasoning_words: int = 3,
    desc: str = "traces",
    ask_verdict: bool = False,
) -> list[TraceCase]:
    """Run the loop for every case (mutated in place and returned), at most round_limit(max_rounds)
    answers per case."""
    active = list(cases)
    for round_no in range(1, round_limit(max_rounds) + 1):
        if not active:
            break
        requests = [ChatRequest(messages=tuple(c.messages), sampling=sampling) for c in active]
        responses = client.complete(requests, desc=f"{desc} round {round_no}")
        answers = []
        for case, response in zip(active, responses):
            case.rounds = round_no
            record_call(case, response)
            case.history.append(response.text)
            answers.append(read_answer(response.text, response.reasoning, min_reasoning_words))
        if ask_verdict:
            answers = ask_verdicts(active, answers, client, sampling, min_reasoning_words, f"{desc} round {round_no}")
        still_wrong = []
        for case, answer in zip(active, answers):
            case.forms.append(answer.form)
            if len(answer.reasoning.split()) < min_reasoning_words:
                case.outcome = NO_REASONING
            elif answer.verdict == case.label:
                case.outcome, case.trace = VERIFIED, stored_trace(case.label, answer.reasoning)
            else:
                case.outcome = WRONG
                case.messages.append(hint_message(case.label, round_no))
                still_wrong.append(case)
        active = still_wrong
    return cases


def record_call(case: TraceCase, response: ChatResponse) -> None:
    """Add one teacher answer to the case's conversation and token counts."""
    case.tokens_in += response.tokens_in
    case.tokens_out += response.tokens_out
    case.messages.append(ChatMessage(role="assistant", content=response.text))


def ask_verdicts(
    cases: list[TraceCase], answers: list[TeacherAnswer], client, sampling: SamplingParams,
    min_reasoning_words: int, desc: str,
) -> list[TeacherAnswer]:
    """`answers` with the verdict asked for where an answer has enough reasoning but no verdict:
    one batch of VERDICT_QUESTIONs, each continuing its case's conversation. A reply that states
    no verdict leaves the answer as it was."""
    # A one-word reply cannot loop, and a repetition penalty would push it away from "Yes"/"No",
    # which the question itself contains.
    short = sampling.model_copy(update={"max_tokens": VERDICT_TOKENS, "repetition_penalty": 1.0})
    asked = [i for i, a in enumerate(answers) if a.verdict is None and len(a.reasoning.split()) >= min_reasoning_words]
    for i in asked:
        cases[i].messages.append(ChatMessage(role="user", content=VERDICT_QUESTION))
        cases[i].questions += 1
    requests = [ChatRequest(messages=tuple(cases[i].messages), sampling=short) for i in asked]
    replies = client.complete(requests, desc=f"{desc} verdicts") if requests else []
    answers = list(answers)
    for i, reply in zip(asked, replies):
        record_call(cases[i], reply)
        verdict = read_asked_verdict(reply.text, reply.reasoning)
        if verdict is not None:
            answers[i] = TeacherAnswer(verdict, answers[i].reasoning, ASKED)
    return answers


def traces_table(cases: list[TraceCase], keep_label: bool = False) -> pd.DataFrame:
    """The verified traces as rows of schemas.TRACES, in row order; with `keep_label` every other
    case too, its trace the bare label ("Yes. " / "No. ", as the reference stores a row its loop
    gave up on) and `rounds` the answers it was given."""
    rows = [
        {
            "row": c.row,
            "label": c.label,
            "trace": c.trace if c.outcome == VERIFIED else stored_trace(c.label, ""),
            "rounds": c.rounds,
            "tokens_in": c.tokens_in,
            "tokens_out": c.tokens_out,
        }
        for c in sorted(cases, key=lambda c: c.row)
        if c.outcome == VERIFIED or keep_label
    ]
    columns = ["row", "label", "trace", "rounds", "tokens_in", "tokens_out"]
    return pd.DataFrame(rows, columns=columns)


def verification_stats(cases: list[TraceCase], max_rounds: int | None, keep_label: bool = False) -> dict:
    """Kept (= verified) fraction, rounds histogram of kept traces, the round limit and outcome
    counts (`never_right` = stopped by the limit), rows kept with the bare label (traces_table's
    `keep_label`), label balance of the kept traces, verdict forms of every answer and of the kept
    ones, teacher tokens."""
    kept = [c for c in cases if c.outcome == VERIFIED]
    limit = round_limit(max_rounds)
    rounds = Counter(c.rounds for c in kept)
    forms = Counter(form for c in cases for form in c.forms)
    kept_forms = Counter(c.forms[-1] for c in kept)
    return {
        "rows": len(cases),
        "kept": len(kept),
        "kept_fraction": len(kept) / len(cases) if cases else 0.0,
        "rounds_histogram": {str(r): rounds.get(r, 0) for r in range(1, limit + 1)},
        "round_limit": limit,
        "outcomes": dict(sorted(Counter(c.outcome for c in cases).items())),
        "kept_label": len(cases) - len(kept) if keep_label else 0,
        "kept_by_label": label_counts([c.label for c in kept]),
        "verdict_forms": {form: forms.get(form, 0) for form in VERDICT_FORMS},
        "kept_verdict_forms": {form: kept_forms.get(form, 0) for form in VERDICT_FORMS},
        "verdict_questions": sum(c.questions for c in cases),
        "teacher_calls": sum(c.rounds + c.questions for c in cases),
        "tokens_in": sum(c.tokens_in for c in cases),
        "tokens_out": sum(c.tokens_out for c in cases),
    }


def label_counts(labels) -> dict[str, int]:
    """{"0": n_no, "1": n_yes}, both keys always present."""
    counts = Counter(int(label) for label in labels)
    return {str(label): counts.get(label, 0) for label in (0, 1)}


def balance_labels(table: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, int]:
    """(`table` with as many Yes as No traces, traces dropped): the larger label keeps a seeded
    sample of the smaller label's count; row order is kept."""
    rng = np.random.default_rng(seed)
    keep = int(table["label"].value_counts().reindex([0, 1], fill_value=0).min())
    parts = [sample_rows(table[table["label"] == label], keep, rng) for label in (1, 0)]
    balanced = pd.concat(parts).sort_values("row").reset_index(drop=True)
    return balanced, len(table) - len(balanced)
