"""The results tables and verdict, generated from evaluate's files (not a DVC stage).

Usage: python -m stages.results_table [--write | --check]
Reads params.yaml (evaluate: headline, bootstrap, subsets; every stage's params, for the stamps),
the registry's evaluated models and their comparisons (pipeline/registry.py), and for each model
that has them metrics/<model>.json (headline) and metrics/detail/<model>.json (the rest), read
back by pipeline/metrics/stored.py: a model whose files come from another ingest than data/ingest
now, or carry no fingerprint, is left out and named; one whose evaluate params changed since is
marked; one without its detail file is in the headline table only. Every row's ingest fingerprint
is said. When no model's files come from the current ingest, it exits 1 saying so.
Without a flag, prints every table (markdown). `--write` rewrites the
block of README.md between RESULTS_BEGIN and RESULTS_END (a three-line verdict and one table of the
headline metrics) and the whole of docs/results.md (all users, warm / cold, paired differences,
the other cutoffs); `--check` exits 1, naming the file, when either differs from what `--write`
would write.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from pipeline.metrics.bootstrap import LEVEL
from pipeline import layout, registry
from pipeline.metrics.stored import StoredEvaluations, grouped, read_evaluations
from stages.evaluate import EvaluateParams
from pipeline.params import PARAMS_FILE, load_section
from pipeline.report.verdict import interval, llm_rows, verdict

METRICS = Path("metrics")
README = Path("README.md")
RESULTS_PAGE = Path("docs/results.md")
RESULTS_BEGIN = "<!-- results:begin -->"
RESULTS_END = "<!-- results:end -->"
GROUPS = ("warm", "cold")
MARK = "†"  # after a model whose files carry a note (params changed since)


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def overall_table(reports: dict[str, dict], headline: list[str], labels: dict[str, str] | None = None) -> str:
    """One row per model: counts and the headline metrics; `labels`: a model's row name, if not its name."""
    labels = labels or {}
    return markdown(
        ["model", "rows", "users", *headline],
        [[labels.get(model, model), str(report["n_rows"]), str(report["n_users"]),
          *(interval(report, name) for name in headline)]
         for model, report in reports.items()],
    )


def group_table(reports: dict[str, dict], headline: list[str], labels: dict[str, str] | None = None) -> str:
    labels = labels or {}
    return markdown(
        ["model", "users", "rows", "top-N users", *headline],
        [[f"{labels.get(model, model)} ({group})", str(report[group]["n_users"]), str(report[group]["n_rows"]),
          str(report[group].get("topn_users", "—")), *(interval(report[group], name) for name in headline)]
         for model, report in reports.items() for group in GROUPS],
    )


def paired_table(reports: dict[str, dict], headline: list[str], labels: dict[str, str] | None = None) -> str:
    labels = labels or {}
    rows = []
    for model, report in reports.items():
        for key in sorted(key for key in report if key.startswith("vs_")):
            comparison = report[key]
            if comparison.get("model") == model:
                continue  # the best CF model against itself
            reference = key[3:] if key != "vs_best_cf" else f"best CF: {comparison['model']}"
            rows.append([labels.get(model, model), reference,
                         *(interval(comparison, name, signed=True) for name in headline)])
    return markdown(["model", "minus", *headline], rows)


PROTOCOLS = ("", "topn_", "full_", "next_")  # pointwise, sampled top-N, full catalogue, next item


def cutoff_order(name: str) -> tuple:
    """Pointwise, then sampled, full-catalogue and next-item metrics; by metric name, then K (a
    metric without a K, such as full_retrieved, takes K 0)."""
    metric, _, k = name.partition("@")
    protocol = max((p for p in PROTOCOLS if metric.startswith(p)), key=len)
    return PROTOCOLS.index(protocol), metric, int(k) if k else 0


def other_cutoffs_table(reports: dict[str, dict], labels: dict[str, str] | None = None) -> str:
    """The per-K metrics outside the headline (`all_k`: point values, no intervals), every group."""
    labels = labels or {}
    names = sorted({name for report in reports.values() for name in report.get("all_k", {})}, key=cutoff_order)
    rows = []
    for model, report in reports.items():
        for group, values in [("all", report.get("all_k", {}))] + [(g, report[g].get("all_k", {})) for g in GROUPS]:
            rows.append([f"{labels.get(model, model)} ({group})",
                         *(f"{values[name]:.3f}" if name in values else "—" for name in names)])
    return markdown(["model", *names], rows)


def detailed(stored: StoredEvaluations) -> dict[str, dict]:
    """The shown models whose detail file was joined: the warm / cold, paired and cutoff tables' rows."""
    return {model: report for model, report in stored.reports.items() if model not in stored.without_detail}


def row_labels(stored: StoredEvaluations) -> dict[str, str]:
    """model -> "model †" for the marked models, when not every shown model carries the same mark
    (then `provenance_notes` says it once for all)."""
    if len(set(stored.marks.values())) == 1 and set(stored.marks) == set(stored.reports):
        return {}
    return {model: f"{model} {MARK}" for model in stored.marks}


def results_tables(stored: StoredEvaluations, headline: list[str]) -> str:
    """All users, warm / cold users, paired differences (each model with its detail file), in order."""
    labels = row_labels(stored)
    return "\n\n".join([overall_table(stored.reports, headline, labels),
                        group_table(detailed(stored), headline, labels), paired_table(detailed(stored), headline, labels)])


def legend(reports: dict[str, dict], params: EvaluateParams) -> str:
    users = {key: max((report.get(key) or 0 for report in reports.values()), default=0)
             for key in ("topn_users", "full_users")}
    full = (f"full_ columns on {users['full_users']} users with a liked test item, ranked over the catalogue "
            "(next_ columns: every user with a test row, on the next item; docs/evaluation.md); "
            if users["full_users"] else "")
    return (f"`value [low, high]`: {LEVEL:.0%} interval over {params.bootstrap.resamples:,} user-level bootstrap "
            f"resamples of `{params.subset}`, the same resamples for every model; {full}topn_ columns on "
            f"{users['topn_users']} users' sampled candidate lists; — where a model has no such rows. Paired "
            "differences: above / below = the interval excludes zero." + conventions_note(reports))


def conventions_note(reports: dict[str, dict]) -> str:
    """Said when the ranking metrics follow the reference's conventions (evaluate.conventions)."""
    used = sorted({report["conventions"] for report in reports.values() if "conventions" in report})
    return (f" ndcg@K, map@K and hr@K under the `{'`, `'.join(used)}` conventions (evaluate.conventions,"
            " docs/evaluation.md)." if used else "")


def provenance_notes(stored: StoredEvaluations) -> str:
    """Where the rows come from, what is marked, left out or shown without its detail file."""
    notes = [f"Rows computed from ingest `{stored.ingest}` (the fingerprint of data/ingest's files, "
             "pipeline/provenance.py)."]
    marks = sorted(set(stored.marks.values()))
    shared = not row_labels(stored) and marks
    for note in marks:
        notes.append(f"{'Every row' if shared else MARK}: {note} (params.yaml differs from the run's; "
                     "`dvc repro evaluate` recomputes them).")
    if stored.left_out:
        notes.append(f"Left out, not this dataset's results ({layout.metrics('<model>')}): "
                     f"{grouped(stored.left_out)}.")
    if stored.without_detail:
        notes.append(f"Headline only, their {layout.metrics_detail('<model>')} (warm / cold, paired differences, "
                     f"other cutoffs, the verdict) not joined: {grouped(stored.without_detail)}; "
                     "`dvc repro evaluate` writes them.")
    return " ".join(notes)


def readme_block(stored: StoredEvaluations, params: EvaluateParams) -> str:
    """README's generated block, markers included."""
    reports = stored.reports
    lines = [RESULTS_BEGIN,
             "<!-- generated by `python -m stages.results_table --write` from metrics/ and params.yaml: do not edit -->",
             *verdict(detailed(stored), llm_rows(detailed(stored)), registry.comparisons(), params.headline), "",
             overall_table(reports, params.headline, row_labels(stored)), "",
             legend(reports, params) + " " + provenance_notes(stored), RESULTS_END]
    return "\n".join(lines)


def results_page(stored: StoredEvaluations, params: EvaluateParams) -> str:
    """docs/results.md, whole."""
    reports, labels, detail = stored.reports, row_labels(stored), detailed(stored)
    sections = [
        "# Results: every table",
        f"Generated by `python -m stages.results_table --write` from `{layout.metrics('<model>')}` (headline), "
        f"`{layout.metrics_detail('<model>')}` (the rest) and params.yaml's "
        "`evaluate` section: do not edit. Which code and run produced these metrics: [README](../README.md), "
        "Results; metric definitions: [evaluation.md](evaluation.md).",
        legend(reports, params) + " " + provenance_notes(stored),
        "## All users", overall_table(reports, params.headline, labels),
        "## Warm and cold users",
        "Warm users have train rows; cold users have none (the CF models' vectors for them are untrained).",
        group_table(detail, params.headline, labels),
        "## Paired differences",
        "Each model minus the models it ablates (`compared_with` in pipeline/registry.py) and minus the best CF model "
        f"(chosen on `{params.selection_subset}`), on the same resamples.",
        paired_table(detail, params.headline, labels),
        "## Verdict", "\n".join(verdict(detail, llm_rows(detail), registry.comparisons(), params.headline)),
        "## Other cutoffs",
        "The per-K metrics outside `evaluate.headline` (`all_k`): point values, no intervals.",
        other_cutoffs_table(detail, labels),
    ]
    return "\n\n".join(sections) + "\n"


def replace_block(text: str, block: str, path: Path) -> str:
    """`text` with the lines from RESULTS_BEGIN to RESULTS_END replaced by `block`."""
    begin, end = text.find(RESULTS_BEGIN), text.find(RESULTS_END)
    if begin < 0 or end < begin:
        raise SystemExit(f"{path}: no {RESULTS_BEGIN} ... {RESULTS_END} block")
    return text[:begin] + block + text[end + len(RESULTS_END):]


def generated_files(stored: StoredEvaluations, params: EvaluateParams) -> dict[Path, str]:
    """What --write writes: path -> full text."""
    return {README: replace_block(README.read_text(), readme_block(stored, params), README),
            RESULTS_PAGE: results_page(stored, params)}


def stored_evaluations() -> StoredEvaluations:
    """evaluate's files of the registry's models, checked against data/ingest and params.yaml now;
    SystemExit when none is shown. What is left out or unchecked is said on stderr."""
    params_now = (yaml.safe_load(PARAMS_FILE.read_text()) or {}) if PARAMS_FILE.exists() else {}
    stored = read_evaluations(Path("."), registry.evaluated(), params_now)
    if not stored.reports:
        if stored.left_out:
            raise SystemExit(f"no {layout.metrics('<model>')} comes from {layout.INGEST} now (ingest {stored.ingest}): "
                             f"{grouped(stored.left_out)}: run `dvc repro evaluate`")
        raise SystemExit(f"no {METRICS}/<model>.json for any of {registry.evaluated()}: run the evaluate stage first")
    if not stored.ingest_checked:
        print(f"results_table: {layout.INGEST} is absent: the rows are those of ingest {stored.ingest}, "
              "the fingerprint most metrics files carry", file=sys.stderr)
    if stored.left_out:
        print(f"results_table: left out {layout.metrics('<model>')} of {grouped(stored.left_out)}", file=sys.stderr)
    return stored


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help=f"rewrite {README}'s results block and {RESULTS_PAGE}")
    mode.add_argument("--check", action="store_true", help="exit 1 if either is stale relative to metrics/")
    args = parser.parse_args(argv)
    params = load_section("evaluate", EvaluateParams)
    stored = stored_evaluations()
    if not (args.write or args.check):
        detail = detailed(stored)
        print(results_tables(stored, params.headline))
        print("\n" + "\n".join(verdict(detail, llm_rows(detail), registry.comparisons(), params.headline)))
        print("\n" + provenance_notes(stored))
        return
    files = generated_files(stored, params)
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
