"""What every LLM-recommender stage runs: train (+ score) one variant from its inputs under data/
(pipeline/rec/recipe.py: train_variant, which writes nothing) and write data/rec/<variant>/
(+ data/predictions/<variant>.parquet for reported variants) and metrics/<variant>_train.json
(the paths: pipeline/layout.py)."""
from __future__ import annotations

from pipeline import layout, schemas
from pipeline.artifacts import atomic_directory, write_frame, write_json
from pipeline.cf.config import CFParams
from pipeline.params import load_section
from pipeline.rec import distributed
from pipeline.rec.inputs import rec_inputs
from pipeline.rec.model import save_rec_model
from pipeline.rec.params import RecParams
from pipeline.rec.recipe import train_variant
from pipeline.rec.variants import get_variant


def run_rec_stage(variant: str) -> dict:
    """Read params.yaml's `rec` section, train (+ score) `variant`, print one line. Under
    `torchrun --nproc_per_node N` the ranks train data-parallel (pipeline/rec/distributed.py)."""
    spec = get_variant(variant)
    params = load_section("rec", RecParams)
    out_dir = layout.rec_dir(spec.name)
    predictions = layout.predictions(spec.name) if spec.reported else None
    metrics_path = layout.train_metrics(spec.name)
    lora_dir = layout.rec_dir(spec.lora_from) if spec.lora_from else None
    with distributed.process_group():  # under torchrun (WORLD_SIZE > 1); else nothing
        inputs = rec_inputs(spec, load_section("cf", CFParams).model)
        trained = train_variant(spec, params, inputs, lora_dir)
    log, metrics = trained.log, trained.metrics
    summary = {"log": log, "metrics": metrics}
    if metrics is None:  # a rank > 0: rank 0 writes the outputs
        return summary
    with atomic_directory(out_dir) as tmp:  # adapter + projector + log appear together
        save_rec_model(trained.recommender.rec, tmp)
        write_json(log, tmp / "train_log.json")
    if trained.predictions is not None:
        write_frame(trained.predictions, predictions, schemas.PREDICTIONS)
    write_json(metrics, metrics_path)
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
