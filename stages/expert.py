"""Stage `expert@<slot>`: the LoRA expert of user cluster <slot>, started from ThinkRec's stage-1
LoRA (with ThinkRec's projector, both frozen), training only the LoRA of the top
`experts.train.upper_layers` layers on the cluster's train rows and traces, the lower layers' output
computed once per row.

dvc.yaml generates one stage per entry of `experts.slots` (DVC has no range(n)); a slot at or past
the cluster count writes a marker and loads nothing, so `dvc exp run -S experts.n=3` just works.

Usage: python -m stages.expert <slot>
Writes data/experts/expert_<slot>/ (adapter/: a whole peft adapter, loadable alone by an engine
that serves one LoRA per request; expert.json; train_log.json) and metrics/experts/expert_<slot>.json.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from pipeline import layout
from pipeline.artifacts import atomic_directory, write_json
from pipeline.cf.config import CFParams
from pipeline.experts.assembly import BASE_VARIANT
from pipeline.experts.params import ExpertsParams
from pipeline.layout import expert_dir
from pipeline.params import load_section
from pipeline.rec.clustering import read_clustering
from pipeline.errors import run_stage


def main(slot: int) -> None:
    params = load_section("experts", ExpertsParams)
    clustering, user_clusters = read_clustering()
    metrics_path = layout.expert_metrics(slot)
    if slot >= clustering["n"]:
        with atomic_directory(expert_dir(slot)) as tmp:
            write_json({"slot": slot, "used": False, "clusters": clustering["n"]}, tmp / "expert.json")
        write_json({"slot": slot, "used": False}, metrics_path)
        print(f"expert@{slot}: unused ({clustering['n']} clusters)")
        return
    train_slot(slot, params, clustering, user_clusters, metrics_path)


def train_slot(slot: int, params: ExpertsParams, clustering: dict, user_clusters, metrics_path: Path) -> None:
    import torch

    from pipeline.experts.training import train_expert
    from pipeline.rec.model import ADAPTER_DIR, save_adapter
    from pipeline.rec.packing import disjoint_shares, label_blocks, packs_of, singletons
    from pipeline.rec.params import RecParams
    from pipeline.rec.recommender import load_recommender

    started = time.perf_counter()
    rec_params = load_section("rec", RecParams)
    torch.set_num_threads(rec_params.threads)
    # ThinkRec with its reasoning traces: the expert trains on the cluster's traces too
    recommender = load_recommender(BASE_VARIANT, rec_params, load_section("cf", CFParams).model,
                                   params.train.dtype, traces=True)
    data = recommender.data
    users = set(user_clusters.loc[user_clusters["cluster"] == slot, "user"].astype(int))
    frame = data.interactions[(data.interactions["split"] == "train") & data.interactions["user"].isin(users)]
    train_params = params.train
    packing = rec_params.packing
    blocks = label_blocks(frame, packing.targets, packing.max_span_seconds)
    blocks = disjoint_shares(blocks, [min(train_params.train_rows, len(frame))], train_params.seed)[0]
    rec, encode = recommender.rec, recommender.encode
    rows = [row for block in blocks for row in block]
    train = encode(frame.set_index("row", drop=False).loc[rows], None, f"encode cluster {slot}")
    traced = frame[frame["row"].isin(data.traces)]
    reasoning = encode(traced, data.traces, f"encode cluster {slot} traces")
    log = train_expert(rec, packs_of(train, blocks), singletons(reasoning), train_params, rec_params.loss)
    timings = {k: log.pop(k) for k in ("cache_seconds", "train_seconds", "validation_seconds")}
    description = {"slot": slot, "used": True, "users": len(users), "train_rows": len(log["train_rows"]),
                   "packs": len(blocks), "traces": len(reasoning), "micro_batches": log["micro_batches"],
                   "precision": log["precision"], "upper_layers": train_params.upper_layers, "from": BASE_VARIANT}
    with atomic_directory(expert_dir(slot)) as tmp:
        save_adapter(rec.llm, tmp / ADAPTER_DIR)
        write_json(description, tmp / "expert.json")
        write_json(log, tmp / "train_log.json")
    tokens = sum(s["tokens"] for s in log["steps"])
    answers = sum(s["answers"] for s in log["steps"])
    steps = log["steps"]
    write_json({**description, **timings, "train_tokens": tokens,
                "train_tokens_per_second": tokens / max(timings["train_seconds"], 1e-9),
                "train_answers_per_second": answers / max(timings["train_seconds"], 1e-9),
                "loss_first": steps[0]["loss"], "loss_last": steps[-1]["loss"],
                "total_seconds": time.perf_counter() - started}, metrics_path)
    print(f"expert@{slot}: {len(users)} users, {len(train)} rows, {len(reasoning)} traces, {len(steps)} steps on the "
          f"top {train_params.upper_layers} layers, loss {steps[0]['loss']:.3f} -> {steps[-1]['loss']:.3f}, "
          f"{time.perf_counter() - started:.0f} s -> {expert_dir(slot)}")


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        raise SystemExit("usage: python -m stages.expert <slot>")
    run_stage(main, int(sys.argv[1]))
