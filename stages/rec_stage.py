"""What every LLM-recommender stage runs: train (+ score) one variant from its inputs under data/
(pipeline/rec/recipe.py: train_variant, which writes nothing) and write data/rec/<variant>/
(+ for reported variants data/predictions/<variant>.parquet and the full-catalogue re-ranking,
data/ranking/<variant>.parquet and <variant>_candidates.parquet) and metrics/<variant>_train.json
(the paths: pipeline/layout.py)."""
from __future__ import annotations

from pipeline import layout, registry, schemas
from pipeline.artifacts import atomic_directory, atomic_paths, write_frame, write_json
from pipeline.params import load_section
from pipeline.rec import distributed
from pipeline.ranking.evaluation import rerank_evaluation
from pipeline.ranking.params import RankingParams
from pipeline.rec.examples import CFVectors
from pipeline.rec.inputs import rec_inputs, selected_vectors
from pipeline.rec.model import save_rec_model
from pipeline.rec.params import RecParams
from pipeline.rec.recipe import train_variant
from pipeline.rec.recommender import Recommender
from pipeline.rec.variants import get_variant
from stages.stamp import stamped


def full_ranking(recommender: Recommender, batch_size: int, ranking: RankingParams, retriever: CFVectors):
    """(RERANKED, RANKS, timings): the retriever's (the selected CF model's) top K re-ranked for
    every evaluated user (pipeline/ranking, the path `thinkrec recommend` ranks by), for
    data/ranking/<name>_candidates.parquet and <name>.parquet and the stage's metrics."""
    return rerank_evaluation(recommender, recommender.data.interactions, retriever, ranking, batch_size)


RANKING_FILES = ((layout.reranked, schemas.RERANKED), (layout.ranking, schemas.RANKS))  # full_ranking's frames


def run_rec_stage(variant: str) -> dict:
    """Read params.yaml's `rec` section, train (+ score) `variant`, print one line. Under
    `torchrun --nproc_per_node N` the ranks train data-parallel (pipeline/rec/distributed.py)."""
    spec = get_variant(variant)
    params = load_section("rec", RecParams)
    out_dir = layout.rec_dir(spec.name)
    predictions = layout.predictions(spec.name) if spec.reported else None
    metrics_path = layout.train_metrics(spec.name)
    lora_dir = layout.rec_dir(spec.lora_from) if spec.lora_from else None
    # read before training: a bad `ranking` key or a missing selection fails in seconds, not after it
    ranking = load_section("ranking", RankingParams) if spec.reported else None
    retriever = selected_vectors(spec.name) if spec.reported else None
    with distributed.process_group():  # under torchrun (WORLD_SIZE > 1); else nothing
        inputs = rec_inputs(spec)
        trained = train_variant(spec, params, inputs, lora_dir)
    log, metrics = trained.log, trained.metrics
    summary = {"log": log, "metrics": metrics}
    if metrics is None:  # a rank > 0: rank 0 writes the outputs
        return summary
    # adapter + projector + log, the predictions and the metrics appear together or not at all
    reported = trained.predictions is not None
    files = [metrics_path] + ([predictions, *(path(spec.name) for path, _ in RANKING_FILES)] if reported else [])
    with atomic_directory(out_dir) as tmp, atomic_paths(*files) as temporaries:
        save_rec_model(trained.recommender.rec, tmp)
        write_json(log, tmp / "train_log.json")
        if reported:
            write_frame(trained.predictions, temporaries[1], schemas.PREDICTIONS)
            *frames, timings = full_ranking(trained.recommender, params.scoring.topn_batch_size, ranking, retriever)
            for frame, (_, schema), temporary in zip(frames, RANKING_FILES, temporaries[2:]):
                write_frame(frame, temporary, schema)
            metrics.update(timings)
        write_json(stamped(metrics, registry.get_model(spec.name).stage), temporaries[0])
    valid = metrics["valid_small"]
    shown = f"valid_small AUC {valid['auc']:.4f} UAUC {valid['uauc']:.4f}, " if valid else ""
    if log.get("epochs", {}).get("stopped_early"):  # rec.stage<N>.patience
        shown = f"stopped early ({log['epochs']['steps_planned']} planned), " + shown
    print(
        f"{spec.name}: stage {spec.stage}, {log['rows']['train']} train rows, {log['rows']['reasoning']} traces "
        f"({log['traces_cut']} cut), {len(log['steps'])} steps at {metrics['train_tokens_per_second']:.0f} "
        f"tokens/s, {shown}{metrics['total_seconds']:.0f} s -> {out_dir}"
        + (f", {predictions}" if predictions else "") + f", {metrics_path}"
    )
    return summary
