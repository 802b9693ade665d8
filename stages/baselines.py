"""Baselines stage: the training-free baselines' predictions.

Usage: python -m stages.baselines
Reads data/ingest/{interactions,items,topn_candidates}.parquet and params rec.prompt.history_items
(the history length the LLM prompts show) and ranking. Writes data/predictions/history.parquet (every interaction
row scored by the liked rate of the history its prompt shows) and
data/predictions/popularity.parquet (every interaction row and every top-N candidate, row = -1,
scored by its item's train count), and data/ranking/popularity.parquet (the same counts ranking
every evaluated user's catalogue, pipeline/ranking).
"""
from __future__ import annotations

from pipeline import layout
from pipeline.artifacts import atomic_paths, read_frame, write_frame
from pipeline.baselines.history import history_predictions
from pipeline.baselines.popularity import popularity_predictions, train_popularity
from pipeline.ranking.catalogue import evaluated_users
from pipeline.ranking.params import RankingParams
from pipeline.ranking.ranks import constant_ranks
from pipeline.rec.params import PromptParams
from pipeline.schemas import INTERACTIONS, ITEMS, PREDICTIONS, RANKS, TOPN_CANDIDATES
from pipeline.params import load_section
from pipeline.errors import BadParams, run_stage

OUTPUTS = {name: layout.predictions(name) for name in ("history", "popularity")}
RANKED = {"popularity": layout.ranking("popularity")}  # full-catalogue ranks (pipeline/ranking)


def main() -> None:
    last = load_section("rec.prompt", PromptParams).history_items  # validated as the rec stages do
    if last < 1:
        raise BadParams(f"params.yaml: rec.prompt.history_items is {last}: the history baseline scores the "
                         "liked rate of at least one history item")
    ranking = load_section("ranking", RankingParams)
    interactions = read_frame(layout.INTERACTIONS, INTERACTIONS)
    candidates = read_frame(layout.TOPN_CANDIDATES, TOPN_CANDIDATES)
    n_items = len(read_frame(layout.ITEMS, ITEMS))
    ranked = evaluated_users(interactions, n_items, ranking)
    frames = [(history_predictions(interactions, last), OUTPUTS["history"], PREDICTIONS),
              (popularity_predictions(interactions, candidates), OUTPUTS["popularity"], PREDICTIONS),
              (constant_ranks(train_popularity(interactions, n_items), ranked), RANKED["popularity"], RANKS)]
    with atomic_paths(*(path for _, path, _ in frames)) as temporaries:  # all three files or none
        for (frame, _, schema), temporary in zip(frames, temporaries):
            write_frame(frame, temporary, schema)
    print(f"baselines: {len(interactions)} rows scored by history (last {last} items) and by popularity, "
          f"{len(candidates)} top-N candidates and {ranked.users.size} users' catalogues by popularity; wrote "
          f"{', '.join(map(str, [*OUTPUTS.values(), *RANKED.values()]))}")


if __name__ == "__main__":
    run_stage(main)
