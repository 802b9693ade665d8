"""Stage `cf_select`: the CF model whose vectors feed the LLM stages, chosen once.

params cf.model: auto takes the registry's CF model with the best AUC on evaluate.selection_subset
(validation rows; test rows are refused), a model's name takes that model. A chosen model whose AUC
there is below cf.chance_auc is at chance: a warning line, and at_chance in the metrics.

Usage: python -m stages.cf_select
Reads data/ingest/{interactions,subsets}.parquet, data/predictions/<model>.parquet and data/cf/<model>/
of every CF model of the registry. Writes data/cf_selected/ (a byte copy of the chosen model's files
and predictions.parquet, selected.json naming it: pipeline/cf/selection.py) and metrics/cf_select.json
(the choice, every candidate's AUC, at_chance, the warning; stamped with its ingest and params:
pipeline/provenance.py).
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from pipeline import layout, registry
from pipeline.artifacts import read_frame, write_json
from pipeline.cf.config import CFParams
from pipeline.cf.selected import AUTO
from pipeline.cf.selection import choose_cf_model, model_files, write_selection
from pipeline.errors import run_stage
from pipeline.metrics.compare import RowSet, cf_selection_aucs
from pipeline.params import load_section
from pipeline.schemas import INTERACTIONS, PREDICTIONS, SUBSET_ROWS
from stages.stamp import stamped

METRICS = layout.metrics("cf_select")


class SelectionRows(BaseModel):
    """The one key of params.yaml `evaluate` this stage reads (evaluate validates the section whole)."""

    model_config = ConfigDict(extra="ignore")
    selection_subset: RowSet


def main() -> None:
    params = load_section("cf", CFParams)
    rows = load_section("evaluate", SelectionRows).selection_subset
    interactions = read_frame(layout.INTERACTIONS, INTERACTIONS)
    subsets = read_frame(layout.SUBSETS, SUBSET_ROWS)
    names = [entry.name for entry in registry.models("cf") if entry.evaluated]
    predictions = {name: read_frame(layout.predictions(name), PREDICTIONS) for name in names}
    aucs = cf_selection_aucs(rows, predictions, interactions, subsets)
    choice = choose_cf_model(params.model, aucs, rows, params.chance_auc)
    write_selection(choice.model, model_files(layout.cf_dir(choice.model), layout.predictions(choice.model)))
    write_json(stamped(choice.as_dict(), "cf_select"), METRICS)
    shown = ", ".join(f"{name} {auc:.4f}" for name, auc in aucs.items())
    how = f"the best AUC on {rows}" if params.model == AUTO else f"cf.model: {params.model}"
    print(f"cf_select: {choice.model} ({how}; AUC on {rows}: {shown}) -> {layout.CF_SELECTED_DIR}/, {METRICS}")
    if choice.at_chance:
        print(f"cf_select: warning: {choice.warning()}")


if __name__ == "__main__":
    run_stage(main)
