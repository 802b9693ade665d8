"""History stage: the history-only baseline's predictions (no training).

Usage: python -m stages.history
Reads data/ingest/{interactions,topn_candidates}.parquet and params rec.prompt.history_items (the
history length the LLM prompts show). Writes data/predictions/history.parquet: every interaction
row, and every top-N candidate (row = -1) scored with its user's positive row's history, so a
user's candidates differ only by popularity.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.artifacts import read_frame, write_frame
from pipeline.baselines.history import history_predictions
from pipeline.rec.params import PromptParams
from pipeline.schemas import INTERACTIONS, PREDICTIONS, TOPN_CANDIDATES
from stages.params import load_section

INGEST = Path("data/ingest")
OUTPUT = Path("data/predictions/history.parquet")


def main() -> None:
    last = load_section("rec.prompt", PromptParams).history_items  # validated as the rec stages do
    if last < 1:
        raise ValueError(f"params.yaml: rec.prompt.history_items is {last}: the history baseline scores the "
                         "liked rate of at least one history item")
    interactions = read_frame(INGEST / "interactions.parquet", INTERACTIONS)
    candidates = read_frame(INGEST / "topn_candidates.parquet", TOPN_CANDIDATES)
    predictions = history_predictions(interactions, candidates, last, str(INGEST / "topn_candidates.parquet"))
    write_frame(predictions, OUTPUT, PREDICTIONS)
    print(f"history: {len(interactions)} rows and {len(candidates)} top-N candidates scored "
          f"from the last {last} history items; wrote {OUTPUT}")


if __name__ == "__main__":
    main()
