"""What the three LLM-recommender stages (train_text, train_cf, train_think) share: their inputs
under data/, their outputs data/rec/<variant>/ + data/predictions/<variant>.parquet, the summary line."""
from __future__ import annotations

from pathlib import Path

from pipeline.rec.recipe import RecInputs, RecParams, VariantSpec, run_variant
from stages.params import CFChoice, load_section

INGEST = Path("data/ingest")
REC_DIR = Path("data/rec")
PREDICTIONS_DIR = Path("data/predictions")
METRICS_DIR = Path("metrics")


# variant -> (what it reads and trains, its training section under params.yaml `rec`)
VARIANTS: dict[str, tuple[VariantSpec, str]] = {
    # TALLRec-style: a new LoRA on text-only prompts (no CF slots, no keywords)
    "tallrec": (VariantSpec("tallrec", cf_slots=False, keywords=False, traces=False, init_from=None,
                            train_lora=True, train_projector=False), "train_text"),
    # CoLLM-style: tallrec's LoRA frozen, a new projector writes CF vectors into the slots
    "collm": (VariantSpec("collm", cf_slots=True, keywords=False, traces=False, init_from=REC_DIR / "tallrec",
                          train_lora=False, train_projector=True), "train_cf"),
    # ThinkRec-style: continues collm's LoRA + projector (both trained), keyword prompts, reasoning mix
    "thinkrec": (VariantSpec("thinkrec", cf_slots=True, keywords=True, traces=True, init_from=REC_DIR / "collm",
                             train_lora=True, train_projector=True), "train_think"),
}


def rec_inputs(spec: VariantSpec) -> RecInputs:
    """The artifact paths a variant reads; CF vectors come from data/cf/<cf.model>/."""
    cf_dir = Path("data/cf") / load_section("cf", CFChoice).model if spec.cf_slots else None
    return RecInputs(
        interactions=INGEST / "interactions.parquet",
        items=INGEST / "items.parquet",
        subsets=INGEST / "subsets.parquet",
        user_vectors=cf_dir / "user_vectors.parquet" if cf_dir else None,
        item_vectors=cf_dir / "item_vectors.parquet" if cf_dir else None,
        keywords=Path("data/keywords/item_keywords.parquet") if spec.keywords else None,
        traces=Path("data/traces/traces.parquet") if spec.traces else None,
    )


def run_rec_stage(variant: str) -> dict:
    """Read params.yaml's `rec` section, train + score `variant` (a VARIANTS key), print one line."""
    spec, train_section = VARIANTS[variant]
    params = load_section("rec", RecParams)
    out_dir, predictions = REC_DIR / spec.name, PREDICTIONS_DIR / f"{spec.name}.parquet"
    metrics_path = METRICS_DIR / f"{spec.name}_train.json"
    summary = run_variant(
        spec, params, getattr(params, train_section), rec_inputs(spec), out_dir, predictions, metrics_path
    )
    log, metrics = summary["log"], summary["metrics"]
    valid = metrics["valid_small"]
    print(
        f"{spec.name}: {log['rows']['train']} train rows, {log['rows']['reasoning']} traces, "
        f"{len(log['steps'])} steps (best {metrics['best_step']}), valid_small AUC {valid['auc']:.4f} "
        f"UAUC {valid['uauc']:.4f}, {log['rows']['test_small']} test_small rows scored at "
        f"{metrics['test_rows_per_second']:.1f} rows/s, {metrics['total_seconds']:.0f} s -> {out_dir}, "
        f"{predictions}, {metrics_path}"
    )
    return summary
