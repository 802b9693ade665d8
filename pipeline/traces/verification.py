"""The verification loop: ask, and while the teacher's verdict is wrong, show it a hint naming the
true label and ask again; keep only traces that end in the true label.

All rows still in play are sent together each round, so a batched backend answers a round in one
batch. Requests are a pure function of the row and the earlier (cached) answers, so a re-run is
answered entirely from the cache.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from pipeline.llm.chat import ChatMessage, ChatRequest, SamplingParams
from pipeline.traces.prompt import hint_message, question_messages, read_answer, stored_trace

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


def make_cases(rows: pd.DataFrame, names: dict[int, str], n_history: int) -> list[TraceCase]:
    """One case per row of `rows` (row, item, label, history_items, history_labels), in row order."""
    rows = rows.sort_values("row")
    return [
        TraceCase(
            row=int(r.row),
            label=int(r.label),
            messages=question_messages(r.history_items, r.history_labels, r.item, names, n_history),
        )
        for r in rows.itertuples(index=False)
    ]


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
            answer = read_answer(response.text, response.reasoning)
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
    """Kept fraction, rounds histogram of kept traces, outcome counts, teacher tokens."""
    kept = [c for c in cases if c.outcome == VERIFIED]
    rounds = Counter(c.rounds for c in kept)
    return {
        "rows": len(cases),
        "kept": len(kept),
        "kept_fraction": len(kept) / len(cases) if cases else 0.0,
        "rounds_histogram": {str(r): rounds.get(r, 0) for r in range(1, max_rounds + 1)},
        "outcomes": dict(sorted(Counter(c.outcome for c in cases).items())),
        "kept_by_label": {str(k): v for k, v in sorted(Counter(c.label for c in kept).items())},
        "teacher_calls": sum(c.rounds for c in cases),
        "tokens_in": sum(c.tokens_in for c in cases),
        "tokens_out": sum(c.tokens_out for c in cases),
    }
