"""Stage `expert@<slot>`: the LoRA expert of user cluster <slot>, started from ThinkRec's stage-1
LoRA, training only the LoRA of the top `experts.train.upper_layers` layers on the cluster's train
rows and traces, the lower layers' output computed once per row (with `experts.train.epochs`, in
epochs, the checkpoint chosen on the cluster's valid_small rows). `experts.train.prompt` says in
which model: cf, ThinkRec's stage-2 model (its projector frozen) on CF-slot prompts; text, ThinkRec's
stage-1 variant on text prompts (keywords, no CF), as ThinkRec's stage 3. Either way the saved
expert is scored inside the stage-2 model (stages/gate.py, stages/thinkrec_experts.py).

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
from pipeline.artifacts import atomic_directory, atomic_paths, write_json
from pipeline.experts.assembly import expert_start
from pipeline.experts.params import ExpertsParams
from pipeline.layout import expert_dir
from pipeline.params import load_section
from pipeline.rec.clustering import read_clustering
from pipeline.errors import run_stage
from stages.stamp import stamped


def main(slot: int) -> None:
    params = load_section("experts", ExpertsParams)
    clustering, user_clusters = read_clustering()
    metrics_path = layout.expert_metrics(slot)
    if slot >= clustering["n"]:
        with atomic_directory(expert_dir(slot)) as tmp, atomic_paths(metrics_path) as (metrics_tmp,):
            write_json({"slot": slot, "used": False, "clusters": clustering["n"]}, tmp / "expert.json")
            write_json(stamped({"slot": slot, "used": False}, f"expert@{slot}"), metrics_tmp)
        print(f"expert@{slot}: unused ({clustering['n']} clusters)")
        return
    train_slot(slot, params, clustering, user_clusters, metrics_path)


def train_slot(slot: int, params: ExpertsParams, clustering: dict, user_clusters, metrics_path: Path) -> None:
    import torch

    from pipeline.experts.training import train_cluster_expert
    from pipeline.rec.model import ADAPTER_DIR, save_adapter
    from pipeline.rec.params import RecParams
    from pipeline.rec.recommender import load_recommender

    started = time.perf_counter()
    rec_params = load_section("rec", RecParams)
    torch.set_num_threads(rec_params.threads)
    # ThinkRec (stage 2 or stage 1) with its reasoning traces: the expert trains on the cluster's traces too
    recommender = load_recommender(expert_start(params.train.prompt), rec_params, params.train.dtype, traces=True)
    users = set(user_clusters.loc[user_clusters["cluster"] == slot, "user"].astype(int))
    trained = train_cluster_expert(recommender, slot, users, params.train, rec_params.packing, rec_params.loss,
                                   rec_params.scoring)
    description = trained.description
    # the expert and its metrics together or neither
    with atomic_directory(expert_dir(slot)) as tmp, atomic_paths(metrics_path) as (metrics_tmp,):
        save_adapter(trained.rec.llm, tmp / ADAPTER_DIR)
        write_json(description, tmp / "expert.json")
        write_json(trained.log, tmp / "train_log.json")
        write_json(stamped({**trained.metrics, "total_seconds": time.perf_counter() - started}, f"expert@{slot}"),
                   metrics_tmp)
    steps, log = trained.log["steps"], trained.log
    chosen = "" if "best_step" not in log else (
        f", best step {log['best_step']} (valid_small of the cluster: {log['valid_small_rows']} rows, "
        f"{rec_params.scoring.selection} {log['valid_small']['selection']:.4f}"
        f"{', stopped early' if log['epochs']['stopped_early'] else ''})")
    print(f"expert@{slot}: {len(users)} users, {description['train_rows']} rows, {description['traces']} traces, "
          f"{len(steps)} steps on the top {params.train.upper_layers} layers of {description['from']}, "
          f"loss {steps[0]['loss']:.3f} -> {steps[-1]['loss']:.3f}{chosen}, {time.perf_counter() - started:.0f} s -> "
          f"{expert_dir(slot)}")


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        raise SystemExit("usage: python -m stages.expert <slot>")
    run_stage(main, int(sys.argv[1]))
