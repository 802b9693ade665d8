"""What every LLM-recommender stage shares: its inputs under data/, its outputs data/rec/<variant>/
(+ data/predictions/<variant>.parquet for reported variants) and metrics/<variant>_train.json."""
from __future__ import annotations

from pathlib import Path

from pipeline.rec import distributed
from pipeline.rec.data import RecInputs
from pipeline.rec.params import RecParams
from pipeline.rec.recipe import run_variant
from pipeline.rec.variants import VariantSpec, get_variant
from stages.params import CFChoice, load_section

INGEST = Path("data/ingest")
REC_DIR = Path("data/rec")
PREDICTIONS_DIR = Path("data/predictions")
METRICS_DIR = Path("metrics")


def rec_inputs(spec: VariantSpec) -> RecInputs:
    """The artifact paths a variant reads; CF vectors come from data/cf/<cf.model>/ (with the
    per-row user states a sequential model exports, when it does)."""
    cf_dir = Path("data/cf") / load_section("cf", CFChoice).model if spec.cf_slots else None
    row_states = cf_dir / "row_user_vectors.parquet" if cf_dir else None
    return RecInputs(
        interactions=INGEST / "interactions.parquet",
        items=INGEST / "items.parquet",
        subsets=INGEST / "subsets.parquet",
        topn_candidates=INGEST / "topn_candidates.parquet" if spec.reported else None,
        user_vectors=cf_dir / "user_vectors.parquet" if cf_dir else None,
        item_vectors=cf_dir / "item_vectors.parquet" if cf_dir else None,
        row_user_vectors=row_states if row_states is not None and row_states.exists() else None,
        keywords=Path("data/keywords/item_keywords.parquet") if spec.keywords else None,
        traces=Path("data/traces/traces.parquet") if spec.traces else None,
    )


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
        summary = run_variant(spec, params, rec_inputs(spec), lora_dir, out_dir, predictions, metrics_path)
    log, metrics = summary["log"], summary["metrics"]
    if metrics is None:  # a rank > 0: rank 0 wrote the outputs
        return summary
    valid = metrics["valid_small"]
    shown = f"valid_small AUC {valid['auc']:.4f} UAUC {valid['uauc']:.4f}, " if valid else ""
    print(
        f"{spec.name}: stage {spec.stage}, {log['rows']['train']} train rows, {log['rows']['reasoning']} traces "
        f"({log['traces_cut']} cut), {len(log['steps'])} steps at {metrics['train_tokens_per_second']:.0f} "
        f"tokens/s, {shown}{metrics['total_seconds']:.0f} s -> {out_dir}"
        + (f", {predictions}" if predictions else "") + f", {metrics_path}"
    )
    return summary
