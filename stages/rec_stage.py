"""What every LLM-recommender stage runs: train (+ score) one variant from its inputs under data/
into data/rec/<variant>/ (+ data/predictions/<variant>.parquet for reported variants) and
metrics/<variant>_train.json (the paths: pipeline/rec/inputs.py)."""
from __future__ import annotations

from pipeline.cf.config import CFParams
from pipeline.params import load_section
from pipeline.rec import distributed
from pipeline.rec.inputs import METRICS_DIR, PREDICTIONS_DIR, REC_DIR, rec_inputs
from pipeline.rec.params import RecParams
from pipeline.rec.recipe import run_variant
from pipeline.rec.variants import get_variant


def run_rec_stage(variant: str) -> dict:
    """Read params.yaml's `rec` section, train (+ score) `variant`, print one line. Under
    `torchrun --nproc_per_node N` the ranks train data-parallel (pipeline/rec/distributed.py)."""
    spec = get_variant(variant)
    params = load_section("rec", RecParams)
    out_dir = REC_DIR / spec.name
    predictions = PREDICTIONS_DIR / f"{spec.name}.parquet" if spec.reported else None
    metrics_path = METRICS_DIR / f"{spec.name}_train.json"
    lora_dir = REC_DIR / spec.lora_from if spec.lora_from else None
    with distributed.process_group():  # under torchrun (WORLD_SIZE > 1); else nothing
        inputs = rec_inputs(spec, load_section("cf", CFParams).model)
        summary = run_variant(spec, params, inputs, lora_dir, out_dir, predictions, metrics_path)
    log, metrics = summary["log"], summary["metrics"]
    if metrics is None:  # a rank > 0: rank 0 wrote the outputs
        return summary
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
