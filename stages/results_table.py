"""Print the README's results tables (markdown) from metrics/<model>.json (not a DVC stage).

Usage: python -m stages.results_table
Reads params evaluate.models and evaluate.headline and metrics/<model>.json for each model that
has one; prints `value [low, high]` per headline metric: all users, then warm and cold users,
then the paired differences (vs_<reference>).
"""
from __future__ import annotations

import json
from pathlib import Path

from stages.evaluate import EvaluateParams
from stages.params import load_section

METRICS = Path("metrics")


def interval(group: dict, name: str, signed: bool = False) -> str:
    """`value [low, high]` of metric `name` in `group`, "—" when absent or undefined."""
    values = [group.get(key) for key in (name, f"{name}_low", f"{name}_high")]
    if None in values:
        return "—"
    number = "{:+.3f}" if signed else "{:.3f}"
    return f"{number.format(values[0])} [{number.format(values[1])}, {number.format(values[2])}]"


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def results_tables(reports: dict[str, dict], headline: list[str]) -> str:
    """The three tables for `reports` (model -> metrics JSON), in their order."""
    overall = markdown(
        ["model", "rows", "users", *headline],
        [[model, str(report["n_rows"]), str(report["n_users"]), *(interval(report, name) for name in headline)]
         for model, report in reports.items()],
    )
    by_group = markdown(
        ["model", "users", "rows", "top-N users", *headline],
        [[f"{model} ({group})", str(report[group]["n_users"]), str(report[group]["n_rows"]),
          str(report[group].get("topn_users", "—")), *(interval(report[group], name) for name in headline)]
         for model, report in reports.items() for group in ("warm", "cold")],
    )
    paired_rows = []
    for model, report in reports.items():
        for key in sorted(key for key in report if key.startswith("vs_")):
            comparison = report[key]
            if comparison.get("model") == model:
                continue  # the best CF model against itself
            reference = key[3:] if key != "vs_best_cf" else f"best CF: {comparison['model']}"
            paired_rows.append([model, reference, *(interval(comparison, name, signed=True) for name in headline)])
    paired = markdown(["model", "minus", *headline], paired_rows)
    return "\n\n".join([overall, by_group, paired])


def main() -> None:
    params = load_section("evaluate", EvaluateParams)
    reports = {model: json.loads((METRICS / f"{model}.json").read_text())
               for model in params.models if (METRICS / f"{model}.json").exists()}
    if not reports:
        raise SystemExit(f"no {METRICS}/<model>.json for any of {params.models}: run the evaluate stage first")
    print(results_tables(reports, params.headline))


if __name__ == "__main__":
    main()
