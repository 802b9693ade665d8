"""Recipe search on validation rows only: train one LLM-recommender variant with params.yaml's `rec`
section plus overrides, score valid_small (never a test row) and append one JSON line of figures.

The variant trains exactly as its stage does (pipeline.rec.recipe.train_variant), but as an
unreported variant that keeps its last step: it scores valid_small once, after training, and
writes neither predictions nor test scores. A stage-2 variant starts from `--lora-from` (a stage-1
sweep's `--save` directory) or, by default, from the committed pipeline's data/rec/<lora_from>.

Run from the root of a repro'd checkout (it reads data/ and params.yaml), on a quiet machine:
    python bench/recipe_sweep.py s1_lr5e-3 tallrec --set stage1.lr=0.005 --save /tmp/sweep/s1_lr5e-3
    python bench/recipe_sweep.py s12 collm --set stage2.lr=0.03 --lora-from /tmp/sweep/s1_lr5e-3
Appends to bench/results/recipe_sweep.jsonl (git-ignored like every bench result;
docs/experiments/2026-11-22-choosing-the-recipe.md tabulates it).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.artifacts import atomic_directory, write_json  # noqa: E402
from pipeline.rec.inputs import REC_DIR, rec_inputs  # noqa: E402
from pipeline.rec.params import RecParams  # noqa: E402
from pipeline.rec.model import save_rec_model  # noqa: E402
from pipeline.rec.recipe import train_variant  # noqa: E402
from pipeline.rec.variants import VariantSpec, get_variant  # noqa: E402
from pipeline.params import PARAMS_FILE  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "recipe_sweep.jsonl"


def with_overrides(section: dict, overrides: list[str]) -> dict:
    """`section` with each "a.b.c=value" (value read as YAML) set; an unknown key is an error."""
    for override in overrides:
        key, _, raw = override.partition("=")
        if not raw:
            raise SystemExit(f"--set {override!r}: expected key=value")
        node, parts = section, key.split(".")
        for part in parts[:-1]:
            node = node[part]
        if parts[-1] not in node:
            raise SystemExit(f"--set {override!r}: rec.{key} is not a params.yaml key")
        node[parts[-1]] = yaml.safe_load(raw)
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tag")
    parser.add_argument("variant")
    parser.add_argument("--set", action="append", default=[], dest="overrides", help="rec.<key>=value")
    parser.add_argument("--lora-from", type=Path, help="stage 2: the stage-1 LoRA directory to start from")
    parser.add_argument("--save", type=Path, help="keep the trained adapter (+ projector) here")
    parser.add_argument("--no-valid", action="store_true", help="train and save only (a stage-1 run feeding stage 2)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    section = with_overrides(yaml.safe_load(PARAMS_FILE.read_text())["rec"], args.overrides)
    spec = VariantSpec(dataclasses.replace(get_variant(args.variant).entry, evaluated=False))
    stage = "stage1" if spec.stage == 1 else "stage2"
    # one valid_small scoring, after the last step (the loop validates at the end whenever it validates)
    section[stage]["eval_every"] = 0 if args.no_valid else 10**9
    params = RecParams.model_validate(section)
    lora_dir = args.lora_from or (REC_DIR / spec.lora_from if spec.lora_from else None)
    trained = train_variant(spec, params, rec_inputs(spec), lora_dir)
    if args.save:  # the adapter (+ projector) and train_log.json, as the stage writes them
        with atomic_directory(args.save) as tmp:
            save_rec_model(trained.recommender.rec, tmp)
            write_json(trained.log, tmp / "train_log.json")
    metrics, log = trained.metrics, trained.log
    valid = metrics["valid_small"] or {}
    result = {
        "tag": args.tag, "variant": spec.name, "overrides": args.overrides,
        "lora_from": str(lora_dir) if lora_dir else None,
        "valid_small_auc": valid.get("auc"), "valid_small_uauc": valid.get("uauc"),
        "selection": valid.get("selection"),
        "train_seconds": metrics["train_seconds"], "train_tokens_per_second": metrics["train_tokens_per_second"],
        "probe_loss": [log["probe_loss_before"], log["probe_loss_after"]],
    }
    print(json.dumps(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a") as handle:
        handle.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
