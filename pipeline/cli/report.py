"""`thinkrec report [-o report.html]`: one self-contained HTML page (inline CSS and SVG, no
network) from metrics/, plots/, data/ and `dvc exp show --json` when dvc can answer."""
from __future__ import annotations

from pathlib import Path

import yaml

from pipeline import registry
from pipeline.artifacts import atomic_path
from pipeline.metrics.stored import grouped
from pipeline.report.collect import collect
from pipeline.report.page import experiment_records, render


def add_arguments(parser) -> None:
    parser.add_argument("-o", "--output", default="report.html", help="the HTML file written (default report.html)")
    parser.add_argument("--no-experiments", action="store_true", help="skip `dvc exp show`")
    parser.add_argument("--examples", type=int, default=3, help="example explanations shown (default 3)")


def run(args) -> int:
    if Path(args.output).is_dir():
        raise ValueError(f"-o {args.output} is a directory; give the HTML file to write, e.g. {Path(args.output) / 'report.html'}")
    root = Path(".")
    params = yaml.safe_load(Path("params.yaml").read_text()) if Path("params.yaml").exists() else {}
    evaluate = (params or {}).get("evaluate") or {}
    inputs = collect(root, registry.evaluated(), evaluate.get("subset", "test_small"),
                     list(evaluate.get("headline") or []), experiments=not args.no_experiments)
    html = render(inputs, examples=args.examples)
    with atomic_path(args.output) as tmp:
        Path(tmp).write_text(html, encoding="utf-8")
    marked = grouped(inputs.marks)
    print(f"report: {len(inputs.models)} models, {len(inputs.roc)} ROC curves, {len(experiment_records(inputs.experiments))} dvc exp show rows"
          f"{'; marked: ' + marked if marked else ''}"
          f"{'; not shown: ' + '; '.join(inputs.skipped) if inputs.skipped else ''} -> {args.output}")
    return 0
