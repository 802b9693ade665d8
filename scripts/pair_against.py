"""Paired differences of every reported model against one other model, computed exactly as the
evaluate stage computes its registry comparisons (its main, the same resamples and seeds), with that
model added to each one's comparisons; prints them and writes nothing.

The registry pairs a model with its ablations and the best CF model; the full-catalogue headline's
strongest row, popularity, is paired only with the RDRec students. This answers "every row against
popularity" (or any other row) without changing what evaluate writes.

Usage (from the project root, after `dvc repro evaluate`):
    python scripts/pair_against.py popularity [--metrics full_hr@10 full_ndcg@10 next_ndcg@10]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file from the project root

import stages.evaluate as evaluate  # noqa: E402
from pipeline import layout, registry  # noqa: E402
from pipeline.errors import run_stage  # noqa: E402
from pipeline.report.verdict import interval  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", help="the registry model every other is paired with")
    parser.add_argument("--metrics", nargs="+", default=["full_hr@10", "full_ndcg@10", "next_ndcg@10"])
    args = parser.parse_args()
    if args.reference not in registry.evaluated():
        parser.error(f"{args.reference!r} is not a model evaluate measures (pipeline/registry.py): "
                     f"{', '.join(registry.evaluated())}")
    registered = registry.comparisons

    def with_reference() -> dict[str, list[str]]:
        pairs = {name: list(others) for name, others in registered().items()}
        for name in registry.evaluated():
            if name != args.reference and args.reference not in pairs.setdefault(name, []):
                pairs[name].append(args.reference)
        return pairs

    files: dict = {}
    evaluate.registry.comparisons = with_reference
    evaluate.write_json_files = files.update  # nothing written
    with contextlib.redirect_stdout(io.StringIO()):
        evaluate.main()
    key = f"vs_{args.reference}"
    for name in registry.evaluated():
        comparison = files[layout.metrics_detail(name)].get(key)
        if comparison and any(f"{metric}_low" in comparison for metric in args.metrics):
            shown = "; ".join(f"{metric} {interval(comparison, metric, signed=True)}" for metric in args.metrics
                              if f"{metric}_low" in comparison)
            print(f"{name} - {args.reference}: {shown}")


if __name__ == "__main__":
    run_stage(main)  # a missing artifact or bad params: one line, as the stages say it
