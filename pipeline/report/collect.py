"""Everything the report shows, read from a project directory; a missing input is skipped (None
or empty), never an error: the report renders whatever the pipeline has produced so far."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import schemas
from pipeline.artifacts import read_frame
from pipeline.metrics.per_user import pointwise_table
from pipeline.metrics.scores import pointwise_scores


@dataclass
class ReportInputs:
    models: dict[str, dict] = field(default_factory=dict)  # metrics/<model>.json with intervals (pointwise and/or top-N)
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


def model_metrics(root: Path, order: list[str], unreadable: list[str]) -> dict[str, dict]:
    """metrics/*.json files that are model evaluations (some metric with its interval at the top
    level: pointwise AUC, top-N HR, ...), `order` first; a file that is not JSON, or a model of
    `order` whose file holds no such metric, is named in `unreadable`."""
    found = {}
    for path in sorted((root / "metrics").glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            unreadable.append(f"metrics/{path.name} (unreadable: {err})")
            continue
        if isinstance(data, dict) and any(has_interval(data, key) for key in data):
            found[path.stem] = data
        elif path.stem in order:
            unreadable.append(f"metrics/{path.name} (no metric with its interval)")
    return {name: found[name] for name in [*order, *sorted(found)] if name in found}


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


def training_logs(root: Path, kind: str, key: str) -> dict[str, list[dict]]:
    """data/<kind>/*/train_log.json's `key` list (rec: "steps", cf: "epochs")."""
    logs = {}
    for path in sorted((root / "data" / kind).glob("*/train_log.json")):
        data = _json(path)
        if data and data.get(key):
            logs[path.parent.name] = data[key]
    return logs


def llm_usage(root: Path) -> dict[str, dict]:
    usage = {}
    for path in sorted((root / "metrics").glob("*.json")):
        data = _json(path)
        if isinstance(data, dict) and isinstance(data.get("llm"), dict):
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
    inputs.models = model_metrics(root, order, inputs.skipped)
    inputs.roc = roc_curves(root, list(inputs.models))
    pointwise = [name for name, m in inputs.models.items() if has_interval(m, "auc")]  # not the top-N-only
    try:
        inputs.user_auc = per_user_auc(root, pointwise, subset) if pointwise else {}
    except (OSError, ValueError, KeyError) as err:
        inputs.skipped.append(f"per-user AUC: {err}")
    inputs.rec_logs = training_logs(root, "rec", "steps")
    inputs.cf_logs = training_logs(root, "cf", "epochs")
    inputs.llm = llm_usage(root)
    path = root / "data/explanations/explanations.parquet"
    if path.exists():
        inputs.explanations = read_frame(path, schemas.EXPLANATIONS)
    inputs.explanation_metrics = _json(root / "metrics/explanations.json") or {}
    if experiments:
        inputs.experiments, why = dvc_experiments(root)
        if why:
            inputs.skipped.append(why)
    return inputs
