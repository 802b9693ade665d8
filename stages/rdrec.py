"""Stages `rdrec` and `rdrec_no_rationales` (RDRec's student): `python -m stages.rdrec <variant>`.

Reads params `rdrec` (variants: task weights; prompt; train; scoring), `rec` (backbone, lora,
projector, answer_logit, threads: the student is the project's recommender with a new LoRA),
`ranking` (max_users, seed: the users the full-catalogue ranking evaluates);
data/ingest/{interactions,items,topn_candidates}.parquet, data/cf_selected/ (the CF model cf_select
chose) and, for variants with rationale tasks, data/rationales/rationales.parquet. Writes data/rdrec/<variant>/
(adapter, projector, train_log.json), data/predictions/<variant>.parquet (top-N candidates,
row = -1), data/ranking/<variant>.parquet (the next-item head's full-catalogue ranks of every test
user's targets, schemas.RANKS) and metrics/<variant>_train.json.
"""
from __future__ import annotations

import sys

from pipeline import layout, registry, schemas
from pipeline.artifacts import atomic_directory, atomic_paths, write_frame, write_json
from pipeline.rdrec.params import RDRecParams
from pipeline.rdrec.student import Backbone, StudentInputs, train_student_variant
from pipeline.ranking.params import RankingParams
from pipeline.rec.model import save_rec_model
from pipeline.rec.params import RecParams
from pipeline.params import load_section
from pipeline.errors import run_stage
from stages.stamp import stamped


def main(variant: str) -> dict:
    params = load_section("rdrec", RDRecParams)
    rec = load_section("rec", RecParams)
    cf_dir = layout.CF_SELECTED_DIR
    row_states = cf_dir / "row_user_vectors.parquet"
    weights = params.variants.get(variant, {})
    inputs = StudentInputs(
        interactions=layout.INTERACTIONS,
        items=layout.ITEMS,
        topn_candidates=layout.TOPN_CANDIDATES,
        user_vectors=cf_dir / "user_vectors.parquet",
        item_vectors=cf_dir / "item_vectors.parquet",
        row_user_vectors=row_states if row_states.exists() else None,
        rationales=layout.RATIONALES if weights.get("preference", 0) > 0 or weights.get("attributes", 0) > 0 else None,
    )
    backbone = Backbone(rec.backbone, rec.lora, rec.projector.expansion, rec.projector.match_embedding_norm,
                        rec.answer_logit, rec.threads, rec.device)
    out_dir = layout.rdrec_dir(variant)
    predictions = layout.predictions(variant)
    ranking = layout.ranking(variant)
    metrics_path = layout.train_metrics(variant)
    trained = train_student_variant(variant, params, backbone, inputs, load_section("ranking", RankingParams))
    # adapter + projector + log, the predictions, ranks and metrics appear together or not at all
    with atomic_directory(out_dir) as tmp, atomic_paths(predictions, ranking, metrics_path) as temporaries:
        save_rec_model(trained.rec, tmp)
        write_json(trained.log, tmp / "train_log.json")
        write_frame(trained.predictions, temporaries[0], schemas.PREDICTIONS)
        write_frame(trained.ranks, temporaries[1], schemas.RANKS)
        write_json(stamped(trained.metrics, registry.get_model(variant).stage), temporaries[2])
    metrics = trained.metrics
    tasks = ", ".join(f"{task} {c['batches']} batches" for task, c in metrics["tasks"].items())
    print(f"{variant}: {metrics['steps']} steps ({tasks}), {metrics['train_tokens']} tokens at "
          f"{metrics['train_tokens_per_second']:.0f} tokens/s, top-N {metrics['topn_candidates']} candidates in "
          f"{metrics['topn_scoring_seconds']:.1f} s, catalogue ranks of {metrics['ranking_users']} users in "
          f"{metrics['ranking_seconds']:.1f} s, {metrics['total_seconds']:.0f} s -> {out_dir}, {predictions}, "
          f"{ranking}, {metrics_path}")
    return metrics


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m stages.rdrec <variant>  (a key of params.yaml rdrec.variants)")
    run_stage(main, sys.argv[1])
