"""Benchmark of expert fusion, each a ratio measured in one run on the same rows:

- scoring: batched per-row fusion (one forward over a batch of mixed users, every row with its own
  expert weights) vs the paper's way, one peft adapter merged per user with
  add_weighted_adapter(..., combination_type="cat") and that user's rows scored with it (samples/s);
- expert training: the top layers trained on the lower layers' output computed once per row vs a
  full forward (and backward) per step (tokens/s).

Needs the pipeline's artifacts (after `dvc repro thinkrec_experts`): ThinkRec (data/rec/thinkrec),
the experts (data/experts/expert_<k>) and the gate. Run from the project root on a quiet machine:
`python bench/experts_speed.py` (writes bench/results/experts_speed.json).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from peft import PeftModel  # noqa: E402

from pipeline.artifacts import write_json  # noqa: E402
from pipeline.experts.assembly import BASE_VARIANT, NAME  # noqa: E402
from pipeline.experts.params import ExpertsParams  # noqa: E402
from pipeline.experts.training import train_expert  # noqa: E402
from pipeline.params import load_section  # noqa: E402
from pipeline.rec.clustering import read_clustering, used_expert_dirs  # noqa: E402
from pipeline.rec.inputs import REC_DIR  # noqa: E402
from pipeline.rec.model import ADAPTER_DIR, RecModel, load_backbone, use_precision  # noqa: E402
from pipeline.rec.params import RecParams  # noqa: E402
from pipeline.rec.recommender import load_recommender  # noqa: E402
from pipeline.rec.scoring import score_examples  # noqa: E402

RESULTS = Path("bench/results/experts_speed.json")


def merged_per_user_scores(params: RecParams, projector, expert_dirs, examples, dtype: str) -> np.ndarray:
    """The paper's way: merge the experts' whole adapters for one user's weights (exact "cat"
    combination; here once per user and mixture, since the gate reads each row's state), then score
    those rows with the merged adapter (and ThinkRec's `projector`)."""
    model, tokenizer = load_backbone(params.backbone)
    names = [f"e{k}" for k in range(len(expert_dirs))] + ["global"]
    llm = PeftModel.from_pretrained(model, Path(expert_dirs[0]) / ADAPTER_DIR, adapter_name=names[0])
    for name, path in zip(names[1:-1], expert_dirs[1:]):
        llm.load_adapter(Path(path) / ADAPTER_DIR, adapter_name=name)
    llm.load_adapter(REC_DIR / BASE_VARIANT / ADAPTER_DIR, adapter_name="global")
    rec = RecModel(llm, tokenizer, projector).eval()
    rec.requires_grad_(False)
    scores = np.zeros(len(examples), dtype=np.float32)
    groups: dict[tuple, list[int]] = {}  # one merge per user and mixture (the gate is per row)
    for i, example in enumerate(examples):
        groups.setdefault((example.user, tuple(example.expert_weights.tolist())), []).append(i)
    for (_, weights), group in groups.items():
        llm.add_weighted_adapter(names, list(weights), "user", combination_type="cat")
        llm.set_adapter("user")
        rows = [examples[i] for i in group]
        saved = [row.expert_weights for row in rows]
        for row in rows:
            row.expert_weights = None  # the merged adapter is a plain peft model
        scores[group] = score_examples(rec, rows, params.scoring.batch_size, dtype, "merged")
        for row, weight in zip(rows, saved):
            row.expert_weights = weight
        llm.set_adapter("global")
        llm.delete_adapter("user")
    return scores


def timed(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        clock = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - clock)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64, help="warm test_small rows scored (mixed users)")
    parser.add_argument("--steps", type=int, default=8, help="expert training steps per timing")
    parser.add_argument("--passes", type=int, default=3,
                        help="passes over the expert's training rows (the cache pays off from the second pass)")
    parser.add_argument("--dtype", default=None, help="frozen weights' dtype (default: experts.train.dtype)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    params, experts = load_section("rec", RecParams), load_section("experts", ExpertsParams)
    torch.set_num_threads(params.threads)
    recommender = load_recommender(NAME, params, experts.train.dtype, upper_layers=experts.train.upper_layers)
    data, warm, fused = recommender.data, recommender.warm_users, recommender.rec
    dirs = used_expert_dirs(read_clustering()[0])
    test = data.subset("test_small")
    test = test[test["user"].isin(warm)].head(args.rows)
    examples = recommender.encode(test, desc="encode")  # each row routed by the gate
    weights = np.stack([e.expert_weights for e in examples])
    dtype = args.dtype or experts.train.dtype
    fused_s, fused_scores = timed(lambda: score_examples(fused, examples, params.scoring.batch_size, dtype), args.repeats)
    merged_s, merged_scores = timed(lambda: merged_per_user_scores(params, fused.projector, dirs, examples, dtype),
                                    args.repeats)
    scoring = {
        "rows": len(examples), "users": int(test["user"].nunique()),
        "fused_samples_per_second": len(examples) / fused_s, "merged_samples_per_second": len(examples) / merged_s,
        "ratio": merged_s / fused_s, "max_abs_difference": float(np.abs(fused_scores - merged_scores).max()),
        "mixture_rows": int((weights.max(axis=1) < 1).sum()), "merges": len({(e.user, tuple(e.expert_weights.tolist()))
                                                                             for e in examples}),
    }
    print(f"scoring {len(examples)} rows of {scoring['users']} users: fused per row "
          f"{scoring['fused_samples_per_second']:.1f} samples/s, merge per user "
          f"{scoring['merged_samples_per_second']:.1f} samples/s, ratio {scoring['ratio']:.2f}x "
          f"(max |difference| {scoring['max_abs_difference']:.2e})")

    train_params = experts.train.model_copy(update={"steps": args.steps, "dtype": dtype})
    rows = max(1, args.steps * train_params.batch_size // args.passes)
    # the plain encoder: the model trained here has no experts, so its rows carry no expert weights
    train = recommender.encoder(data.interactions[data.interactions["split"] == "train"].head(rows), None, "encode train")
    results = {}
    for cached in (True, False):
        def run():
            rec = load_recommender(BASE_VARIANT, params, "float32").rec
            use_precision(rec, dtype)
            log = train_expert(rec, train, [], train_params, params.loss, cached=cached)
            return sum(s["tokens"] for s in log["steps"]), log["train_seconds"]
        runs = [run() for _ in range(args.repeats)]
        seconds = statistics.median(s for _, s in runs)
        results["cached" if cached else "full"] = {"tokens_per_second": runs[0][0] / seconds, "seconds": seconds}
    training = {**results, "ratio": results["cached"]["tokens_per_second"] / results["full"]["tokens_per_second"],
                "steps": args.steps, "rows": len(train), "passes": args.passes, "upper_layers": train_params.upper_layers,
                "note": "cached includes computing the lower layers once per row"}
    print(f"expert training, top {train_params.upper_layers} layers, {len(train)} rows x {args.passes} passes: cached lower layers "
          f"{results['cached']['tokens_per_second']:.0f} tokens/s vs full forward per step "
          f"{results['full']['tokens_per_second']:.0f} tokens/s, ratio {training['ratio']:.2f}x")
    write_json({"scoring": scoring, "training": training, "repeats": args.repeats, "threads": params.threads,
                "dtype": dtype}, RESULTS)
    print(f"-> {RESULTS}")


if __name__ == "__main__":
    main()
