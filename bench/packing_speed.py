"""Labels per second of stage-1 training, packed (rec.packing) against unpacked, on the same rows.

The same train rows (params.yaml's rec.packing blocks, the first `--rows` of stage 1's share) are
trained by the stages' own loop (pipeline/rec/training.py) twice per repeat: as packs of up to
rec.packing.targets rows after one history prefix, and as one row per sequence; batches hold the
same number of labels. Reports labels/s and tokens/s per repeat and their medians, and the ratio.
Needs a checkout where `dvc repro prepare_model ingest` ran (data/models, data/ingest).

Usage: python bench/packing_speed.py [--rows 256] [--repeats 3] [--dtype auto]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from pipeline.rec.data import variant_encoder
from pipeline.rec.losses import LossParams
from pipeline.rec.model import build_rec_model
from pipeline.rec.packing import packs_of, singletons
from pipeline.rec.params import RecParams
from pipeline.rec.precision import resolve_precision
from pipeline.rec.recipe import stage_blocks
from pipeline.rec.recommender import variant_data
from pipeline.rec.training import LoopParams, label_batches, train_loop, with_extras
from pipeline.rec.variants import get_variant
from pipeline.params import load_section


def run(rows: int, repeats: int, dtype: str) -> None:
    params = load_section("rec", RecParams)
    torch.set_num_threads(params.threads)
    spec = get_variant("tallrec")
    data = variant_data(spec)  # the stages' paths (pipeline/layout.py)
    blocks, taken = [], 0
    for block in stage_blocks(data.interactions, params, 1):
        if taken >= rows:
            break
        blocks.append(block)
        taken += len(block)
    chosen = [row for block in blocks for row in block]
    precision = resolve_precision(dtype)
    results = {"packed": [], "unpacked": []}
    for repeat in range(repeats):
        for mode in ("packed", "unpacked"):
            torch.manual_seed(0)
            rec = build_rec_model(params.backbone, params.lora, frozen_dtype=precision)
            encode = variant_encoder(spec, params.prompt, rec.tokenizer, data)
            examples = encode(data.interactions.set_index("row", drop=False).loc[chosen], None, "encode")
            packs = packs_of(examples, blocks) if mode == "packed" else singletons(examples)
            # the same labels per micro-batch: batch_size packs of ~K rows, or K x batch_size rows
            per_batch = params.stage1.batch_size * (1 if mode == "packed" else params.packing.targets)
            labels = label_batches(packs, per_batch, None, np.random.default_rng(repeat))
            schedule = with_extras(labels, {}, per_batch, np.random.default_rng(0))
            loop = LoopParams(params.stage1.lr, 0.0, 2, 1, precision, 0)
            started = time.perf_counter()
            log = train_loop(rec, schedule, loop, LossParams(**params.loss.model_dump()))
            seconds = time.perf_counter() - started
            answers = sum(s["answers"] for s in log["steps"])
            tokens = sum(s["tokens"] for s in log["steps"])
            results[mode].append((answers / seconds, tokens / seconds))
            print(f"repeat {repeat + 1} {mode}: {answers} labels, {tokens} tokens, {seconds:.1f} s: "
                  f"{answers / seconds:.1f} labels/s, {tokens / seconds:.0f} tokens/s")
    medians = {mode: statistics.median(v[0] for v in values) for mode, values in results.items()}
    print(f"precision {precision}, {len(chosen)} rows in {len(blocks)} packs (<= {params.packing.targets} rows, "
          f"{params.packing.max_span_seconds} s span); median labels/s packed {medians['packed']:.1f}, "
          f"unpacked {medians['unpacked']:.1f}: {medians['packed'] / medians['unpacked']:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args()
    run(args.rows, args.repeats, args.dtype)
