"""Baselines stage: the training-free baselines' predictions.

Usage: python -m stages.baselines
Reads data/ingest/{interactions,topn_candidates}.parquet and params rec.prompt.history_items (the
history length the LLM prompts show). Writes data/predictions/history.parquet (every interaction
row scored by the liked rate of the history its prompt shows) and
data/predictions/popularity.parquet (every interaction row and every top-N candidate, row = -1,
scored by its item's train count).
"""
from __future__ import annotations

from pipeline import layout
from pipeline.artifacts import read_frame, write_frame
from pipeline.baselines.history import history_predictions
from pipeline.baselines.popularity import popularity_predictions
from pipeline.rec.params import PromptParams
from pipeline.schemas import INTERACTIONS, PREDICTIONS, TOPN_CANDIDATES
from pipeline.params import load_section
from pipeline.errors import BadParams, run_stage

OUTPUTS = {name: layout.predictions(name) for name in ("history", "popularity")}


def main() -> None:
    last = load_section("rec.prompt", PromptParams).history_items  # validated as the rec stages do
    if last < 1:
        raise BadParams(f"params.yaml: rec.prompt.history_items is {last}: the history baseline scores the "
                         "liked rate of at least one history item")
    interactions = read_frame(layout.INTERACTIONS, INTERACTIONS)
    candidates = read_frame(layout.TOPN_CANDIDATES, TOPN_CANDIDATES)
    write_frame(history_predictions(interactions, last), OUTPUTS["history"], PREDICTIONS)
    write_frame(popularity_predictions(interactions, candidates), OUTPUTS["popularity"], PREDICTIONS)
    print(f"baselines: {len(interactions)} rows scored by history (last {last} items) and by popularity, "
          f"{len(candidates)} top-N candidates by popularity; wrote {', '.join(map(str, OUTPUTS.values()))}")


if __name__ == "__main__":
    run_stage(main)
