"""Stage of a fused model (registry family `fused`, e.g. thinkrec_fused): its LLM recommender's
score and the retriever's (the CF model cf_select chose) combined per row (pipeline/ranking/fusion.py).

Usage: python -m stages.fused <model>
Reads data/predictions/<part>.parquet (the LLM's valid_small and test_small scores; <part> is the
entry's starts_from), data/cf_selected/predictions.parquet, data/ranking/<part>_candidates.parquet
(the LLM's scores of the retriever's top K per user), data/ingest/{interactions,items,subsets}.parquet
and params ranking; the weight is chosen on valid_small, the rows a fused part scores
(pipeline/rec/recipe.py, registry.fused_parts). Writes
data/predictions/<model>.parquet (every row both score), data/ranking/<model>.parquet (the fused
order of the same retrieved lists) and metrics/<model>_train.json (the weight, every weight's AUC).
"""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from pipeline import layout, registry, schemas
from pipeline.artifacts import atomic_paths, read_frame, write_frame, write_json
from pipeline.cf.selected import SELECTED_PREDICTIONS, selected_cf_model
from pipeline.errors import BadInput, run_stage
from pipeline.metrics.compare import selection_rows
from pipeline.params import load_section
from pipeline.ranking.catalogue import evaluated_users
from pipeline.ranking.fusion import choose_fusion
from pipeline.ranking.lists import reranked_order
from pipeline.ranking.params import RankingParams
from pipeline.ranking.ranks import list_ranks

SELECTION = "valid_small"  # the rows the fused weight is chosen on: those a fused part scores (registry.fused_parts)
from stages.stamp import stamped


def main(name: str) -> None:
    entry = registry.get_model(name)
    if entry.family != "fused":
        raise SystemExit(f"usage: python -m stages.fused <model of family fused>; '{name}' is {entry.family}")
    part = entry.starts_from
    subset = SELECTION
    interactions = read_frame(layout.INTERACTIONS, schemas.INTERACTIONS)
    subsets = read_frame(layout.SUBSETS, schemas.SUBSET_ROWS)
    n_items = len(read_frame(layout.ITEMS, schemas.ITEMS))
    llm = read_frame(layout.predictions(part), schemas.PREDICTIONS)
    cf = read_frame(SELECTED_PREDICTIONS, schemas.PREDICTIONS)
    rows = (llm[llm["row"] >= 0].merge(cf.loc[cf["row"] >= 0, ["row", "score"]], on="row", how="inner",
                                       suffixes=("", "_retriever"))
            .merge(interactions[["row", "label"]], on="row").sort_values("row", ignore_index=True))
    chosen = rows["row"].isin(selection_rows(subset, interactions, subsets))
    if not chosen.any():
        raise BadInput(f"{layout.predictions(part)}: no {subset} rows scored: the fused weight is chosen on them "
                       f"(the registry's fused entries make {part} score them)")
    if rows.loc[chosen, "label"].nunique() < 2:
        raise BadInput(f"{layout.predictions(part)}: its {subset} rows hold one label only: the fused weight is "
                       "chosen by AUC, which needs liked and not-liked rows")
    fusion = choose_fusion(rows.loc[chosen, "label"].to_numpy(), rows.loc[chosen, "score"].to_numpy(),
                           rows.loc[chosen, "score_retriever"].to_numpy())
    pointwise = rows[["row", "user", "item"]].assign(
        score=fusion.score(rows["score"].to_numpy(), rows["score_retriever"].to_numpy()))

    candidates = read_frame(layout.reranked(part), schemas.RERANKED)
    candidates = candidates.assign(fused=fusion.score(candidates["score"].to_numpy(),
                                                      candidates["retriever_score"].to_numpy()))
    lists = {}
    for user, frame in candidates.groupby("user", sort=True):
        order = reranked_order(frame["fused"].to_numpy(), frame["retriever_rank"].to_numpy())
        lists[int(user)] = frame["item"].to_numpy()[order]
    users = evaluated_users(interactions, n_items, load_section("ranking", RankingParams))
    ranks = list_ranks(users, lists, ("topn",))

    # the predictions, ranks and metrics (stamped: pipeline/provenance.py) together or none
    files = (layout.predictions(name), layout.ranking(name), layout.train_metrics(name))
    with atomic_paths(*files) as (predictions_tmp, ranks_tmp, metrics_tmp):
        write_frame(pointwise, predictions_tmp, schemas.PREDICTIONS)
        write_frame(ranks, ranks_tmp, schemas.RANKS)
        write_json(stamped({"model": name, "llm": part, "retriever": selected_cf_model(), "selection_subset": subset,
                            "selection_rows": int(chosen.sum()), "weight": fusion.weight,
                            "llm_mean": fusion.llm[0], "llm_std": fusion.llm[1],
                            "retriever_mean": fusion.retriever[0], "retriever_std": fusion.retriever[1],
                            "selection_auc": fusion.selection_auc}, registry.get_model(name).stage), metrics_tmp)
    print(f"{name}: weight {fusion.weight:.2f} on {part} (1 - that on the retriever), AUC "
          f"{fusion.selection_auc[f'{fusion.weight:.2f}']:.4f} on {int(chosen.sum())} {subset} rows; "
          f"{len(pointwise)} rows and {len(lists)} users' lists fused -> {layout.predictions(name)}, "
          f"{layout.ranking(name)}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m stages.fused <model>  (a registry model of family fused)")
    run_stage(main, sys.argv[1])
