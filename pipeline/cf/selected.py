"""The CF model the cf_select stage chose (pipeline/cf/selection.py), as every later reader sees it:
data/cf_selected/ holds a byte copy of its data/cf/<model>/ files and its predictions, and
selected.json naming it. The LLM stages, clusters, traces and `thinkrec recommend` read these and
never params cf.model, so no reader decides again and the pipeline's dependencies are fixed paths.
Torch-free and small: a stage that imports it depends on this file, not on how the choice is made.
"""
from __future__ import annotations

from pathlib import Path

from pipeline import layout, registry
from pipeline.artifacts import UnreadableArtifact, read_json_object

AUTO = "auto"  # cf.model: the best AUC on evaluate.selection_subset
SELECTED = "selected.json"
PREDICTIONS = "predictions.parquet"  # the chosen model's data/predictions/<model>.parquet
SELECTED_PREDICTIONS = layout.CF_SELECTED_DIR / PREDICTIONS


def selected_cf_model(directory: Path = layout.CF_SELECTED_DIR, requested: str | None = None) -> str:
    """The CF model whose files `directory` holds, as cf_select chose it. With `requested` (params
    cf.model, for a reader outside the pipeline's dependency graph), a named model the selection does
    not hold is a stale selection."""
    path = Path(directory) / SELECTED
    model = read_json_object(path).get("model")
    known = [entry.name for entry in registry.models("cf", default_run=False)]
    if model not in known:
        raise UnreadableArtifact(path, f"names model {model!r}, not one of the registry's CF models {known}")
    if requested not in (None, AUTO, model):
        raise UnreadableArtifact(path, f"holds {model}, but params.yaml cf.model is {requested} (a stale selection)")
    return model
