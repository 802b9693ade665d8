"""The hard rows' source as the reference has it: a trained LLM recommender scores every train row,
and traces' hard selection takes the rows it gets wrong (ThinkRec's get_mf_book_wrong.yaml: a
stage-2 CoLLM with keywords; here any LLM variant of the registry that does not train on the
traces it would choose, `hard_scores.model`). stages/hard_scores.py reads params and writes."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from pipeline import layout, registry
from pipeline.errors import BadParams
from pipeline.metrics.classification import auc, uauc
from pipeline.params import Strict
from pipeline.traces.selection import score_threshold

if TYPE_CHECKING:  # torch stays out of params loading and dvc.yaml generation
    from pipeline.rec.recommender import Recommender

HARD_SCORES = layout.predictions("hard_scores")  # traces.hard_scores names this file when the stage runs


class HardScoresParams(Strict):
    model: str | None  # None: no stage; traces takes the selected CF model's errors (or traces.hard_scores's file)


class TracesKeys(BaseModel):
    """The keys of params.yaml's `traces` section this stage reads (stages/traces.py's TraceParams
    validates the whole section; reading these alone keeps the teacher's code out of the stage's deps)."""

    model_config = ConfigDict(extra="ignore")
    selection: str
    hard_scores: str | None
    score_threshold: float | None


def check_scoring_model(name: str) -> registry.ModelEntry:
    """Registry LLM model `name`, checked to train on no traces (nor start from a model that does):
    its scores choose the rows the traces are written for. Else a BadParams naming the key."""
    known = {entry.name: entry for entry in registry.models("llm")}  # the default run's: a stage trains each
    if name not in known:
        raise BadParams(f"hard_scores.model: '{name}' is not an LLM recommender the pipeline trains (known: {sorted(known)})")
    entry = known[name]
    chain = [entry]
    while chain[-1].starts_from is not None:
        chain.append(known[chain[-1].starts_from])
    with_traces = [part.name for part in chain if "traces" in part.inputs]
    if with_traces:
        raise BadParams(f"hard_scores.model: '{name}' needs the traces its scores would choose ({with_traces[0]} trains on "
                        "them); name a model without traces, e.g. thinkrec_no_traces (the reference's CoLLM with keywords)")
    return entry


def check_traces_reads_them(model: str | None, traces: dict | TracesKeys) -> None:
    """hard_scores.model writes HARD_SCORES; traces reads the scores only under `traces.selection: hard`
    with traces.hard_scores naming that file: a model set otherwise would be paid for and unread."""
    keys = traces if isinstance(traces, TracesKeys) else TracesKeys.model_validate(traces)
    if model is None:
        return
    if keys.selection != "hard":
        raise BadParams(f"hard_scores.model: {model} scores the train split for hard rows, but traces.selection is "
                        f"{keys.selection}: set traces.selection: hard, or hard_scores.model: null")
    if keys.hard_scores != str(HARD_SCORES):
        shown = "null" if keys.hard_scores is None else keys.hard_scores
        raise BadParams(f"hard_scores.model: {model} writes {HARD_SCORES}, but traces.hard_scores is {shown}: "
                        f"set traces.hard_scores: {HARD_SCORES}, or hard_scores.model: null")


def score_train_rows(recommender: "Recommender", interactions: pd.DataFrame, batch_size: int) -> pd.DataFrame:
    """PREDICTIONS (row, user, item, score) of every train row, by row, in `recommender`'s own prompt
    form (the score it is evaluated by: pipeline/rec/scoring.py)."""
    train = interactions[interactions["split"] == "train"].sort_values("row")
    examples = recommender.encode(train, desc=f"encode train ({recommender.name})")
    scores = recommender.score(examples, batch_size, desc=f"hard_scores {recommender.name}")
    return pd.DataFrame({"row": train["row"].to_numpy(np.int64), "user": train["user"].to_numpy(np.int32),
                         "item": train["item"].to_numpy(np.int32), "score": np.asarray(scores, np.float32)})


def scores_summary(scored: pd.DataFrame, interactions: pd.DataFrame, threshold: float | None) -> dict:
    """How the model did on the rows it scored: AUC, UAUC, and the rows on the wrong side of the
    cut traces applies (traces.score_threshold; None: its rule), by label: the hard pool before
    traces.min_history and traces.count."""
    rows = scored.merge(interactions[["row", "label"]], on="row")
    labels, scores = rows["label"].to_numpy(int), rows["score"].to_numpy(np.float64)
    cut = score_threshold(rows["score"], threshold)
    wrong = (scores > cut).astype(int) != labels
    value, users = uauc(rows["user"].to_numpy(), labels, scores)
    shown = {name: None if np.isnan(number) else number for name, number in (("auc", auc(labels, scores)), ("uauc", value))}
    return {"rows": len(rows), **shown, "uauc_users": users,
            "score_threshold": cut, "wrong": int(wrong.sum()),
            "wrong_by_label": {str(label): int((wrong & (labels == label)).sum()) for label in (0, 1)}}
