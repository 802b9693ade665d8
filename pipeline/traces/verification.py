"""The verification loop: ask, and while the teacher's verdict is wrong, show it a hint naming the
true label and ask again; keep only traces that end in the true label.

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

from pipeline.llm.chat import ChatMessage, ChatRequest, SamplingParams
from pipeline.rec.prompts import PromptItem, PromptTemplate
from pipeline.traces.prompt import VERDICT_FORMS, hint_message, question_messages, read_answer, stored_trace
from pipeline.traces.selection import sample_rows

# How a row's loop ended.
VERIFIED, WRONG, NO_REASONING = "verified", "never_right", "no_reasoning"


@dataclass
class TraceCase:
    row: int
    label: int  # 1 = liked
    messages: list[ChatMessage]  # the conversation so far; grows by (answer, hint) per wrong round
    rounds: int = 0
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


def run_verification(
    cases: list[TraceCase],
    client,
    sampling: SamplingParams,
    max_rounds: int,
    min_reasoning_words: int = 3,
    desc: str = "traces",
) -> list[TraceCase]:
    """Run the loop for every case (mutated in place and returned)."""
    active = list(cases)
    for round_no in range(1, max_rounds + 1):
        if not active:
            break
        requests = [ChatRequest(messages=tuple(c.messages), sampling=sampling) for c in active]
        responses = client.complete(requests, desc=f"{desc} round {round_no}")
        still_wrong = []
        for case, response in zip(active, responses):
            case.rounds = round_no
            case.tokens_in += response.tokens_in
            case.tokens_out += response.tokens_out
            case.history.append(response.text)
            answer = read_answer(response.text, response.reasoning, min_reasoning_words)
            case.forms.append(answer.form)
            if len(answer.reasoning.split()) < min_reasoning_words:
                case.outcome = NO_REASONING
            elif answer.verdict == case.label:
                case.outcome, case.trace = VERIFIED, stored_trace(case.label, answer.reasoning)
            else:
                case.outcome = WRONG
                case.messages.append(ChatMessage(role="assistant", content=response.text))
                case.messages.append(hint_message(case.label, round_no))
                still_wrong.append(case)
        active = still_wrong
    return cases


def traces_table(cases: list[TraceCase]) -> pd.DataFrame:
    """The verified traces as rows of schemas.TRACES, in row order."""
    rows = [
        {
            "row": c.row,
            "label": c.label,
            "trace": c.trace,
            "rounds": c.rounds,
            "tokens_in": c.tokens_in,
            "tokens_out": c.tokens_out,
        }
        for c in sorted(cases, key=lambda c: c.row)
        if c.outcome == VERIFIED
    ]
    columns = ["row", "label", "trace", "rounds", "tokens_in", "tokens_out"]
    return pd.DataFrame(rows, columns=columns)


def verification_stats(cases: list[TraceCase], max_rounds: int) -> dict:
    """Kept fraction, rounds histogram of kept traces, outcome counts, label balance of the kept
    traces, verdict forms of every answer and of the kept ones, teacher tokens."""
    kept = [c for c in cases if c.outcome == VERIFIED]
    rounds = Counter(c.rounds for c in kept)
    forms = Counter(form for c in cases for form in c.forms)
    kept_forms = Counter(c.forms[-1] for c in kept)
    return {
        "rows": len(cases),
        "kept": len(kept),
        "kept_fraction": len(kept) / len(cases) if cases else 0.0,
        "rounds_histogram": {str(r): rounds.get(r, 0) for r in range(1, max_rounds + 1)},
        "outcomes": dict(sorted(Counter(c.outcome for c in cases).items())),
        "kept_by_label": label_counts([c.label for c in kept]),
        "verdict_forms": {form: forms.get(form, 0) for form in VERDICT_FORMS},
        "kept_verdict_forms": {form: kept_forms.get(form, 0) for form in VERDICT_FORMS},
        "teacher_calls": sum(c.rounds for c in cases),
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
