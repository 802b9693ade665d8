"""Everything the report shows, read from a project directory; a missing input is skipped (None
or empty), never an error: the report renders whatever the pipeline has produced so far.

What comes from another dataset is not shown as current (pipeline/provenance.py): a metrics file,
CF training log or LLM-usage summary from another ingest than data/ingest now, or without a
fingerprint, is skipped and named in `skipped`; an evaluation whose stage params changed since is
shown and named in `marks`. Evaluations are read as pipeline/metrics/stored.py reads them (the
headline file joined with its detail file)."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

import yaml

from pipeline import layout, schemas
from pipeline.artifacts import read_frame
from pipeline.metrics.per_user import pointwise_table
from pipeline.metrics.report import INTERVAL
from pipeline.metrics.scores import pointwise_scores
from pipeline.metrics.stored import read_evaluations
from pipeline.provenance import origin, without_stamp


@dataclass
class ReportInputs:
    models: dict[str, dict] = field(default_factory=dict)  # model -> its evaluation (headline + detail joined)
    marks: dict[str, str] = field(default_factory=dict)  # model -> what is off about its shown evaluation
    roc: dict[str, tuple[list, list]] = field(default_factory=dict)  # model -> (fpr, tpr)
    user_auc: dict[str, np.ndarray] = field(default_factory=dict)  # model -> per-user AUC on `subset`
    subset: str = ""
    headline: list[str] = field(default_factory=list)  # metrics shown first, in this order
    rec_logs: dict[str, list[dict]] = field(default_factory=dict)  # variant -> train_log "steps"
    cf_logs: dict[str, list[dict]] = field(default_factory=dict)  # CF model -> train_log "epochs"
    llm: dict[str, dict] = field(default_factory=dict)  # stage -> its metrics' "llm" section (+ stage_seconds)
    explanations: pd.DataFrame | None = None  # EXPLANATIONS rows
    explanation_metrics: dict = field(default_factory=dict)
    experiments: list[dict] = field(default_factory=list)  # `dvc exp show --json` records
    skipped: list[str] = field(default_factory=list)  # what could not be read, and why


def _json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def has_interval(metrics: dict, name: str) -> bool:
    """`name` is a number at the top level of `metrics` with its `_low` and `_high` bounds."""
    return all(isinstance(metrics.get(key), (int, float)) for key in (name, f"{name}_low", f"{name}_high"))


def model_metrics(root: Path, order: list[str], params: dict, inputs: ReportInputs) -> str | None:
    """Fill `inputs.models` with the evaluations of `order` and of any other model with a headline
    file in metrics/ (its metrics with their `interval`), `order` first; what is left out, marked or
    shown without its detail file goes to `inputs.skipped` / `inputs.marks`. Returns the ingest
    fingerprint the shown evaluations come from."""
    others = []
    for path in sorted((root / layout.METRICS_DIR).glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            if path.stem not in order:  # those of `order`: read_evaluations says why
                inputs.skipped.append(f"{layout.METRICS_DIR / path.name} (unreadable: {err})")
            continue
        if path.stem not in order and isinstance(data, dict) and isinstance(data.get(INTERVAL), dict):
            others.append(path.stem)
    stored = read_evaluations(root, [*order, *others], params)
    inputs.models, inputs.marks = stored.reports, dict(stored.marks)
    inputs.skipped += [f"{layout.metrics(model)} ({why})" for model, why in stored.left_out.items()]
    inputs.skipped += [f"{layout.metrics_detail(model)} ({why}): {model}'s warm / cold users and paired differences"
                       for model, why in stored.without_detail.items()]
    return stored.ingest


def current(path: Path, data: dict, ingest: str | None, params: dict, skipped: list[str]) -> dict | None:
    """`data` (read from `path`) without its stamp when it comes from `ingest`; else None, and
    `skipped` says why."""
    found = origin(data, ingest, params)
    if not found.current:
        skipped.append(f"{path} ({found.why})")
        return None
    return without_stamp(data)


def roc_curves(root: Path, models: list[str]) -> dict[str, tuple[list, list]]:
    curves = {}
    for path in sorted((root / "plots/roc").glob("*.json")):
        data = _json(path)
        if data and data.get("roc"):
            curves[path.stem] = ([p["fpr"] for p in data["roc"]], [p["tpr"] for p in data["roc"]])
    return {name: curves[name] for name in [*models, *sorted(curves)] if name in curves}


def per_user_auc(root: Path, models: list[str], subset: str) -> dict[str, np.ndarray]:
    """Per-user AUC of each model's predictions on the evaluation subset's rows (users with both labels)."""
    ingest = root / "data/ingest"
    interactions = read_frame(ingest / "interactions.parquet", schemas.INTERACTIONS)
    subsets = read_frame(ingest / "subsets.parquet", schemas.SUBSET_ROWS)
    if subset in schemas.SPLITS:
        rows = interactions.loc[interactions["split"] == subset, "row"].to_numpy()
    else:
        rows = subsets.loc[subsets["subset"] == subset, "row"].to_numpy()
    values = {}
    for model in models:
        path = root / "data/predictions" / f"{model}.parquet"
        if not path.exists():
            continue
        scored = pointwise_scores(read_frame(path, schemas.PREDICTIONS), interactions, rows, str(path))
        table = pointwise_table(scored["user"].to_numpy(), scored["label"].to_numpy(), scored["score"].to_numpy(), [])
        auc = table.values["uauc"]
        values[model] = auc[~np.isnan(auc)]
    return values


def training_logs(root: Path, kind: str, key: str, ingest: str | None, params: dict,
                  skipped: list[str]) -> dict[str, list[dict]]:
    """data/<kind>/*/train_log.json's `key` list (rec: "steps", cf: "epochs"), of the current
    ingest: a CF log carries its stamp, an LLM recommender's is checked by its
    metrics/<variant>_train.json."""
    logs = {}
    for path in sorted((root / "data" / kind).glob("*/train_log.json")):
        data = _json(path)
        if not (isinstance(data, dict) and data.get(key)):
            continue
        stamped = data if kind == "cf" else _json(root / layout.train_metrics(path.parent.name))
        if current(path.relative_to(root), stamped if isinstance(stamped, dict) else {}, ingest, params, skipped):
            logs[path.parent.name] = data[key]
    return logs


def llm_usage(root: Path, ingest: str | None, params: dict, skipped: list[str]) -> dict[str, dict]:
    usage = {}
    for path in sorted((root / "metrics").glob("*.json")):
        data = _json(path)
        if isinstance(data, dict) and isinstance(data.get("llm"), dict) and \
                current(path.relative_to(root), data, ingest, params, skipped):
            usage[path.stem] = {**data["llm"], "stage_seconds": data.get("stage_seconds")}
    return usage


def dvc_experiments(root: Path, timeout: float = 60.0) -> tuple[list[dict], str | None]:
    """`dvc exp show --json` records, or ([], why not)."""
    try:
        done = subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--json"], cwd=root, capture_output=True, text=True,
                              timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as err:
        return [], f"dvc exp show: {err}"
    if done.returncode != 0:
        return [], f"dvc exp show: exit {done.returncode}: {done.stderr.strip()[-200:]}"
    try:
        return json.loads(done.stdout), None
    except ValueError as err:
        return [], f"dvc exp show: unreadable JSON ({err})"


def collect(root: Path, order: list[str], subset: str, headline: list[str], experiments: bool = True) -> ReportInputs:
    """Read every input of the report under `root`; `order` lists models first in that order."""
    root = Path(root)
    inputs = ReportInputs(subset=subset, headline=headline)
    params = (yaml.safe_load((root / "params.yaml").read_text()) or {}) if (root / "params.yaml").exists() else {}
    ingest = model_metrics(root, order, params, inputs)
    inputs.roc = {name: curve for name, curve in roc_curves(root, list(inputs.models)).items() if name in inputs.models}
    pointwise = [name for name, m in inputs.models.items() if has_interval(m, "auc")]  # not the top-N-only
    try:
        inputs.user_auc = per_user_auc(root, pointwise, subset) if pointwise else {}
    except (OSError, ValueError, KeyError) as err:
        inputs.skipped.append(f"per-user AUC: {err}")
    inputs.rec_logs = training_logs(root, "rec", "steps", ingest, params, inputs.skipped)
    inputs.cf_logs = training_logs(root, "cf", "epochs", ingest, params, inputs.skipped)
    inputs.llm = llm_usage(root, ingest, params, inputs.skipped)
    explanation_metrics, shown = _json(root / layout.metrics("explanations")), True
    if isinstance(explanation_metrics, dict):
        checked = current(layout.metrics("explanations"), explanation_metrics, ingest, params, inputs.skipped)
        inputs.explanation_metrics, shown = checked or {}, checked is not None
    path = root / layout.EXPLANATIONS_DIR / "explanations.parquet"
    if path.exists() and shown:  # the explain stage writes both: not the rows of a run whose metrics are left out
        inputs.explanations = read_frame(path, schemas.EXPLANATIONS)
    if experiments:
        inputs.experiments, why = dvc_experiments(root)
        if why:
            inputs.skipped.append(why)
    return inputs
