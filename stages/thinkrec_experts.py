"""Stage `thinkrec_experts`: ThinkRec with its cluster experts fused per row by the gate, scored on
test_small (and, when its registry entry ranks top-N, the top-N candidates) in mixed batches.

Usage: python -m stages.thinkrec_experts
Writes data/predictions/thinkrec_experts.parquet, the full-catalogue re-ranking
(data/ranking/thinkrec_experts.parquet and _candidates.parquet: stages/rec_stage.py
full_ranking) and metrics/thinkrec_experts_scoring.json (timings, routing, and per-cluster
AUC/UAUC beside ThinkRec without experts on the same rows).
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from pipeline import layout, registry, schemas
from pipeline.artifacts import atomic_paths, read_frame, write_frame, write_json
from pipeline.experts.assembly import BASE_VARIANT, NAME
from pipeline.experts.params import ExpertsParams
from pipeline.experts.per_cluster import per_cluster
from pipeline.metrics.report import json_safe
from pipeline.params import load_section
from pipeline.rec.assign import scores_with_reuse
from pipeline.rec.clustering import read_clustering
from pipeline.rec.examples import topn_frame
from pipeline.rec.gate import route_kinds
from pipeline.rec.params import RecParams
from pipeline.rec.recipe import predictions_frame
from pipeline.rec.recommender import load_recommender
from pipeline.errors import BadInput, run_stage
from stages.stamp import stamped
from pipeline.ranking.params import RankingParams
from pipeline.rec.inputs import selected_vectors
from stages.rec_stage import RANKING_FILES, full_ranking


def main() -> None:
    started = time.perf_counter()
    experts = load_section("experts", ExpertsParams)
    rec_params = load_section("rec", RecParams)
    ranking, retriever = load_section("ranking", RankingParams), selected_vectors(NAME)  # before any scoring
    torch.set_num_threads(rec_params.threads)
    recommender = load_recommender(NAME, rec_params, experts.train.dtype, upper_layers=experts.train.upper_layers)
    data, gate, dtype = recommender.data, recommender.gate, recommender.precision
    reference = read_frame(layout.predictions(BASE_VARIANT), schemas.PREDICTIONS)
    test = recommender.encode(data.subset("test_small"), desc="encode test_small")  # each row routed by the gate
    weights = np.stack([e.expert_weights for e in test])  # (m, E)
    clock = time.perf_counter()
    scores, fused_rows = scores_with_reuse(
        test, _reference_scores(reference, test, pointwise=True),
        lambda rows: recommender.score(rows, rec_params.scoring.batch_size, dtype, "test_small"))
    timings = {"test_scoring_seconds": time.perf_counter() - clock}
    routed = {"test_small": {"rows": len(test), "scored_fused": fused_rows}}
    parts = [predictions_frame(test, scores)]
    if registry.get_model(NAME).topn:
        candidates = recommender.encode(topn_frame(data.topn_candidates, data.interactions), desc="encode top-N")
        clock = time.perf_counter()
        topn, fused_rows = scores_with_reuse(
            candidates, _reference_scores(reference, candidates, pointwise=False),
            lambda rows: recommender.score_candidates(rows, rec_params.scoring.topn_batch_size, dtype, "top-N"))
        parts.append(predictions_frame(candidates, topn))
        timings["topn_scoring_seconds"] = time.perf_counter() - clock
        routed["topn"] = {"rows": len(candidates), "scored_fused": fused_rows}
    predictions = pd.concat(parts, ignore_index=True)
    rows = pd.DataFrame({"row": [e.row for e in test], "user": [e.user for e in test],
                         "label": [e.label for e in test], "score": scores,
                         "reference": _reference_scores(reference, test, pointwise=True)})
    clusters = per_cluster(rows, read_clustering()[1])
    *frames, ranking_timings = full_ranking(recommender, rec_params.scoring.topn_batch_size, ranking, retriever)
    timings.update(ranking_timings)
    # the predictions, the full-catalogue ranking and their metrics together or none
    ranking_paths = [path(NAME) for path, _ in RANKING_FILES]
    with atomic_paths(layout.predictions(NAME), layout.scoring_metrics(NAME), *ranking_paths) as (
            predictions_tmp, metrics_tmp, *ranking_tmps):
        write_frame(predictions, predictions_tmp, schemas.PREDICTIONS)
        for frame, (_, schema), temporary in zip(frames, RANKING_FILES, ranking_tmps):
            write_frame(frame, temporary, schema)
        write_json(stamped(json_safe({
            "variant": NAME, "precision": dtype, "experts": gate.experts, "gate": gate.kind, "routes": route_kinds(weights),
            "scored": routed, "clusters": clusters,
            **timings, "total_seconds": time.perf_counter() - started,
        }), "thinkrec_experts"), metrics_tmp)
    gains = ", ".join(f"{g}: {c['auc_gain']:+.4f}" if c["auc_gain"] is not None else f"{g}: n/a"
                      for g, c in clusters.items())
    print(f"{NAME}: {len(test)} test_small rows routed {route_kinds(weights)}; AUC gain over {BASE_VARIANT} by "
          f"cluster {gains}; {time.perf_counter() - started:.0f} s")


def _reference_scores(reference: pd.DataFrame, examples, pointwise: bool) -> np.ndarray:
    """ThinkRec's scores of `examples`, in order: by interaction row (pointwise rows) or by
    (user, item) among its top-N candidate rows (row -1). A row it did not score is an error."""
    keys = ["row"] if pointwise else ["user", "item"]
    part = reference[reference["row"] >= 0] if pointwise else reference[reference["row"] == -1]
    wanted = pd.DataFrame({"row": [e.row for e in examples], "user": [e.user for e in examples],
                           "item": [e.item for e in examples]})
    joined = wanted.merge(part[keys + ["score"]], on=keys, how="left", validate="many_to_one")
    if joined["score"].isna().any():
        missing = int(joined["score"].isna().sum())
        raise BadInput(f"{layout.predictions(BASE_VARIANT)} lacks {missing} of the rows scored here "
                         f"({'test_small' if pointwise else f'top-N: does {BASE_VARIANT} rank top-N in pipeline/registry.py?'})")
    return joined["score"].to_numpy(np.float32)


if __name__ == "__main__":
    run_stage(main)
