"""Paired comparison on valid_small only (never a test row): saved recommender models and existing
predictions, each with its AUC and UAUC and a 95% user-bootstrap interval, and each requested
difference with the interval over the same resamples (evaluate's bootstrap params).

A `--model NAME VARIANT DIR` is a variant's saved model (a stage's data/rec/<variant> or a
`bench/recipe_sweep.py --save` directory); it is scored on valid_small and its scores written to
`--out-dir`/NAME.parquet, which a later run can read back with `--predictions NAME PATH`.
`--predictions` also reads the committed CF models' tables (data/predictions/sasrec.parquet holds
every row). Run from the root of a repro'd checkout, on a quiet machine:
    python bench/valid_compare.py --model x8 thinkrec /tmp/sweep/x8_thinkrec \
        --predictions sasrec data/predictions/sasrec.parquet --pair x8 sasrec
Prints one line per model and pair and writes bench/results/valid_compare.json (git-ignored).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.artifacts import read_frame, write_frame  # noqa: E402
from pipeline.layout import INGEST  # noqa: E402
from pipeline.metrics.bootstrap import resample_counts  # noqa: E402
from pipeline.metrics.report import Resamples, group_report, measure_model, paired_report  # noqa: E402
from pipeline.metrics.scores import pointwise_scores  # noqa: E402
from pipeline.rec import distributed  # noqa: E402
from pipeline.rec.params import RecParams  # noqa: E402
from pipeline.rec.recipe import predictions_frame  # noqa: E402
from pipeline.rec.recommender import load_recommender  # noqa: E402
from pipeline.schemas import INTERACTIONS, PREDICTIONS, SUBSET_ROWS  # noqa: E402
from pipeline.metrics.compare import evaluation_rows  # noqa: E402
from stages.evaluate import EvaluateParams  # noqa: E402
from pipeline.params import load_section  # noqa: E402

SUBSET = "valid_small"
HEADLINE = ["auc", "uauc"]
RESULTS = Path(__file__).resolve().parent / "results" / "valid_compare.json"


def score_saved_model(variant: str, model_dir: Path, params: RecParams) -> pd.DataFrame:
    """PREDICTIONS rows of valid_small scored by the saved model of `variant` in `model_dir`, as the
    stages score (the stage's frozen dtype, rec.scoring.batch_size, the variant's prompts)."""
    recommender = load_recommender(variant, params, model_dir=model_dir)
    valid = recommender.encode(recommender.data.subset(SUBSET), desc=f"encode {SUBSET}")
    return predictions_frame(valid, recommender.score(valid, params.scoring.batch_size, desc=SUBSET))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs=3, action="append", default=[], metavar=("NAME", "VARIANT", "DIR"))
    parser.add_argument("--predictions", nargs=2, action="append", default=[], metavar=("NAME", "PATH"))
    parser.add_argument("--pair", nargs=2, action="append", default=[], metavar=("A", "B"), help="report A - B")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent / "results" / "valid_scores")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    names = [name for name, *_ in args.model + args.predictions]
    unknown = sorted({name for pair in args.pair for name in pair} - set(names))
    if unknown or len(set(names)) != len(names):
        raise SystemExit(f"--pair names {unknown} are not models, or a model name repeats: {names}")

    rec_params = load_section("rec", RecParams)
    torch.set_num_threads(distributed.threads_per_process(rec_params.threads))
    tables = {name: read_frame(Path(path), PREDICTIONS) for name, path in args.predictions}
    for name, variant, model_dir in args.model:
        tables[name] = score_saved_model(variant, Path(model_dir), rec_params)
        write_frame(tables[name], args.out_dir / f"{name}.parquet", PREDICTIONS)

    evaluate = load_section("evaluate", EvaluateParams)
    interactions = read_frame(INGEST / "interactions.parquet", INTERACTIONS)
    rows = evaluation_rows(SUBSET, interactions, read_frame(INGEST / "subsets.parquet", SUBSET_ROWS))
    if (interactions.loc[interactions["row"].isin(rows), "split"] == "test").any():
        raise SystemExit(f"{SUBSET} holds test rows")
    n_users = interactions.loc[interactions["row"].isin(rows), "user"].nunique()
    resamples = Resamples(pointwise=resample_counts(n_users, evaluate.bootstrap.resamples, evaluate.bootstrap.seed),
                          topn=np.zeros((evaluate.bootstrap.resamples, 0), dtype=np.int64))
    warm_users = interactions.loc[interactions["split"] == "train", "user"].unique()
    groups = {
        name: measure_model(pointwise_scores(frame, interactions, rows, name), None, warm_users, resamples,
                            [], HEADLINE, 2).groups["all"]
        for name, frame in tables.items()
    }
    result = {"subset": SUBSET, "models": {}, "pairs": {}}
    for name, group in groups.items():
        result["models"][name] = report = group_report(group, HEADLINE)
        print(f"{name}: {report['n_rows']} rows, {report['n_users']} users: " + _shown(report))
    for first, second in args.pair:
        result["pairs"][f"{first} - {second}"] = report = paired_report(groups[first], groups[second], HEADLINE)
        print(f"{first} - {second}: " + _shown(report, signed=True))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


def _shown(report: dict, signed: bool = False) -> str:
    number = "{:+.3f}" if signed else "{:.3f}"
    return ", ".join(
        f"{name} " + f"{number} [{number}, {number}]".format(report[name], report[f"{name}_low"], report[f"{name}_high"])
        for name in HEADLINE
    )


if __name__ == "__main__":
    main()
