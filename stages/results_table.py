"""The results tables and verdict, generated from metrics/<model>.json (not a DVC stage).

Usage: python -m stages.results_table [--write | --check]
Reads params evaluate (headline, bootstrap, subsets), the registry's evaluated models and their
comparisons (pipeline/registry.py), and metrics/<model>.json for each model that has one.
Without a flag, prints every table (markdown). `--write` rewrites the
block of README.md between RESULTS_BEGIN and RESULTS_END (a three-line verdict and one table of the
headline metrics) and the whole of docs/results.md (all users, warm / cold, paired differences,
the other cutoffs); `--check` exits 1, naming the file, when either differs from what `--write`
would write.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.metrics.bootstrap import LEVEL
from pipeline import registry
from stages.evaluate import EvaluateParams
from pipeline.params import load_section

METRICS = Path("metrics")
README = Path("README.md")
RESULTS_PAGE = Path("docs/results.md")
RESULTS_BEGIN = "<!-- results:begin -->"
RESULTS_END = "<!-- results:end -->"
POINTWISE = ("auc", "uauc")  # the verdict's pointwise metrics, where a comparison has them
GROUPS = ("warm", "cold")


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


def overall_table(reports: dict[str, dict], headline: list[str]) -> str:
    return markdown(
        ["model", "rows", "users", *headline],
        [[model, str(report["n_rows"]), str(report["n_users"]), *(interval(report, name) for name in headline)]
         for model, report in reports.items()],
    )


def group_table(reports: dict[str, dict], headline: list[str]) -> str:
    return markdown(
        ["model", "users", "rows", "top-N users", *headline],
        [[f"{model} ({group})", str(report[group]["n_users"]), str(report[group]["n_rows"]),
          str(report[group].get("topn_users", "—")), *(interval(report[group], name) for name in headline)]
         for model, report in reports.items() for group in GROUPS],
    )


def paired_table(reports: dict[str, dict], headline: list[str]) -> str:
    rows = []
    for model, report in reports.items():
        for key in sorted(key for key in report if key.startswith("vs_")):
            comparison = report[key]
            if comparison.get("model") == model:
                continue  # the best CF model against itself
            reference = key[3:] if key != "vs_best_cf" else f"best CF: {comparison['model']}"
            rows.append([model, reference, *(interval(comparison, name, signed=True) for name in headline)])
    return markdown(["model", "minus", *headline], rows)


def other_cutoffs_table(reports: dict[str, dict]) -> str:
    """The per-K metrics outside the headline (`all_k`: point values, no intervals), every group."""
    names = sorted({name for report in reports.values() for name in report.get("all_k", {})},
                   key=lambda name: (name.startswith("topn_"), name.split("@")[0], int(name.split("@")[1])))
    rows = []
    for model, report in reports.items():
        for group, values in [("all", report.get("all_k", {}))] + [(g, report[g].get("all_k", {})) for g in GROUPS]:
            rows.append([f"{model} ({group})", *(f"{values[name]:.3f}" if name in values else "—" for name in names)])
    return markdown(["model", *names], rows)


def results_tables(reports: dict[str, dict], headline: list[str]) -> str:
    """All users, warm / cold users, paired differences: for `reports` (model -> metrics JSON) in order."""
    return "\n\n".join([overall_table(reports, headline), group_table(reports, headline),
                        paired_table(reports, headline)])


def direction(comparison: dict, name: str) -> str:
    """Whether a paired difference's interval lies above zero, below it, or includes it."""
    if comparison[f"{name}_low"] > 0:
        return "above"
    if comparison[f"{name}_high"] < 0:
        return "below"
    return "not separated"


def difference(comparison: dict, names: list[str]) -> str:
    """"AUC -0.049 [-0.073, -0.026] (below), UAUC ..." for the metrics of `names` the comparison has."""
    return ", ".join(f"{name.upper() if name in POINTWISE else name} {interval(comparison, name, signed=True)}"
                     f" ({direction(comparison, name)})" for name in names if f"{name}_low" in comparison)


def compared_metrics(comparison: dict, headline: list[str]) -> list[str]:
    """AUC and UAUC where the comparison has them, else its first top-N headline metric."""
    pointwise = [name for name in POINTWISE if f"{name}_low" in comparison]
    return pointwise or [name for name in headline if name.startswith("topn_") and f"{name}_low" in comparison][:1]


def verdict(reports: dict[str, dict], llm: list[str], ablations: dict[str, list[str]], headline: list[str]) -> list[str]:
    """Three markdown bullets: the best of the `llm` rows against the best CF model (AUC, UAUC), the
    main ablation (the model with the most ablations, against each), the first top-N headline metric."""
    lines = []
    scored = [model for model in llm if "auc" in reports[model] and "vs_best_cf" in reports[model]]
    if scored:
        best = max(scored, key=lambda model: reports[model]["auc"])
        comparison = reports[best]["vs_best_cf"]
        above = sum(direction(reports[model]["vs_best_cf"], "auc") == "above" for model in scored)
        lines.append(f"- **Best LLM row on AUC vs the best CF model**: {best} - {comparison['model']}: "
                     f"{difference(comparison, list(POINTWISE))}; LLM rows above {comparison['model']} "
                     f"on AUC: {above} of {len(scored)}.")
    main = max((model for model in ablations if model in reports), key=lambda model: len(ablations[model]), default=None)
    pairs = [] if main is None else [(reference, reports[main][f"vs_{reference}"]) for reference in ablations[main]
                                     if f"vs_{reference}" in reports[main]]
    if pairs:
        lines.append(f"- **Main ablation, {main} minus each**: " + "; ".join(
            f"{reference}: {difference(comparison, compared_metrics(comparison, headline))}"
            for reference, comparison in pairs) + ".")
    topn = next((name for name in headline if name.startswith("topn_")), None)
    ranked = [model for model in llm if topn is not None and f"{topn}_low" in reports[model].get("vs_best_cf", {})]
    if ranked:
        best = max(ranked, key=lambda model: reports[model][topn])
        comparison = reports[best]["vs_best_cf"]
        lines.append(f"- **Top-N, {topn} on {reports[best]['topn_users']} users**: best LLM row {best} "
                     f"{interval(reports[best], topn)}, {comparison['model']} {interval(reports[comparison['model']], topn)}; "
                     f"difference {difference(comparison, [topn])}.")
    return lines


def legend(reports: dict[str, dict], params: EvaluateParams) -> str:
    topn_users = max((report.get("topn_users", 0) for report in reports.values()), default=0)
    return (f"`value [low, high]`: {LEVEL:.0%} interval over {params.bootstrap.resamples:,} user-level bootstrap "
            f"resamples of `{params.subset}`, the same resamples for every model; top-N columns on "
            f"{topn_users} users' candidate lists; — where a model has no such rows. Paired differences: "
            "above / below = the interval excludes zero." + conventions_note(reports))


def conventions_note(reports: dict[str, dict]) -> str:
    """Said when the ranking metrics follow the reference's conventions (evaluate.conventions)."""
    used = sorted({report["conventions"] for report in reports.values() if "conventions" in report})
    return (f" ndcg@K, map@K and hr@K under the `{'`, `'.join(used)}` conventions (evaluate.conventions,"
            " docs/evaluation.md)." if used else "")


LLM_FAMILIES = ("llm", "experts", "rdrec")  # registry families whose models are LLM recommenders


def llm_rows(reports: dict[str, dict]) -> list[str]:
    """The LLM recommenders among the reported models (the CF models and baselines are not)."""
    families = {entry.name: entry.family for entry in registry.models()}
    return [model for model in reports if families.get(model) in LLM_FAMILIES]


def readme_block(reports: dict[str, dict], params: EvaluateParams) -> str:
    """README's generated block, markers included."""
    lines = [RESULTS_BEGIN,
             "<!-- generated by `python -m stages.results_table --write` from metrics/ and params.yaml: do not edit -->",
             *verdict(reports, llm_rows(reports), registry.comparisons(), params.headline), "",
             overall_table(reports, params.headline), "", legend(reports, params), RESULTS_END]
    return "\n".join(lines)


def results_page(reports: dict[str, dict], params: EvaluateParams) -> str:
    """docs/results.md, whole."""
    sections = [
        "# Results: every table",
        "Generated by `python -m stages.results_table --write` from `metrics/<model>.json` and params.yaml's "
        "`evaluate` section: do not edit. Which code and run produced these metrics: [README](../README.md), "
        "Results; metric definitions: [evaluation.md](evaluation.md).",
        legend(reports, params),
        "## All users", overall_table(reports, params.headline),
        "## Warm and cold users",
        "Warm users have train rows; cold users have none (the CF models' vectors for them are untrained).",
        group_table(reports, params.headline),
        "## Paired differences",
        "Each model minus the models it ablates (`compared_with` in pipeline/registry.py) and minus the best CF model "
        f"(chosen on `{params.selection_subset}`), on the same resamples.",
        paired_table(reports, params.headline),
        "## Verdict", "\n".join(verdict(reports, llm_rows(reports), registry.comparisons(), params.headline)),
        "## Other cutoffs",
        "The per-K metrics outside `evaluate.headline` (`all_k`): point values, no intervals.",
        other_cutoffs_table(reports),
    ]
    return "\n\n".join(sections) + "\n"


def replace_block(text: str, block: str, path: Path) -> str:
    """`text` with the lines from RESULTS_BEGIN to RESULTS_END replaced by `block`."""
    begin, end = text.find(RESULTS_BEGIN), text.find(RESULTS_END)
    if begin < 0 or end < begin:
        raise SystemExit(f"{path}: no {RESULTS_BEGIN} ... {RESULTS_END} block")
    return text[:begin] + block + text[end + len(RESULTS_END):]


def generated_files(reports: dict[str, dict], params: EvaluateParams) -> dict[Path, str]:
    """What --write writes: path -> full text."""
    return {README: replace_block(README.read_text(), readme_block(reports, params), README),
            RESULTS_PAGE: results_page(reports, params)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help=f"rewrite {README}'s results block and {RESULTS_PAGE}")
    mode.add_argument("--check", action="store_true", help="exit 1 if either is stale relative to metrics/")
    args = parser.parse_args(argv)
    params = load_section("evaluate", EvaluateParams)
    reports = {model: json.loads((METRICS / f"{model}.json").read_text())
               for model in registry.evaluated() if (METRICS / f"{model}.json").exists()}
    if not reports:
        raise SystemExit(f"no {METRICS}/<model>.json for any of {registry.evaluated()}: run the evaluate stage first")
    if not (args.write or args.check):
        print(results_tables(reports, params.headline))
        print("\n" + "\n".join(verdict(reports, llm_rows(reports), registry.comparisons(), params.headline)))
        return
    files = generated_files(reports, params)
    stale = [path for path, text in files.items() if not path.exists() or path.read_text() != text]
    if args.check:
        if stale:
            sys.exit(f"stale relative to {METRICS}/: {', '.join(map(str, stale))}; "
                     "run python -m stages.results_table --write")
        return
    for path, text in files.items():
        path.write_text(text)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
