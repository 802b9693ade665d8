"""Evaluate stage: every evaluated model of the registry (pipeline/registry.py) on the same
`evaluate.subset` rows, with user-level bootstrap intervals, warm/cold groups and paired comparisons.

Usage: python -m stages.evaluate
Reads data/predictions/<model>.parquet for each model and data/ingest/{interactions,subsets,
topn_candidates}.parquet. Writes metrics/<model>.json (for `dvc metrics show`) and
plots/roc/<model>.json per model. Each model is compared (`vs_<other>`) with the models its registry
entry names (`compared_with`) and with the best CF model (`vs_best_cf`), chosen by AUC among the
registry's CF models on `evaluate.selection_subset`, which must hold no test rows.
`evaluate.conventions` picks the ranking metrics' conventions: this project's or ThinkRec's
(pipeline/metrics/ranking.py).
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from pipeline import layout, registry
from pipeline.artifacts import read_frame, write_json
from pipeline.metrics.bootstrap import resample_counts
from pipeline.metrics.compare import best_by_auc
from pipeline.metrics.ranking import Conventions
from pipeline.metrics.report import Resamples, measure_model, metric_ks, model_report, paired_report
from pipeline.metrics.scores import pointwise_scores, topn_scores
from pipeline.schemas import INTERACTIONS, PREDICTIONS, SPLITS, SUBSET_ROWS, SUBSETS, TOPN_CANDIDATES
from pipeline.errors import BadInput, BadParams, run_stage
from pipeline.params import Strict, load_section

RowSet = Literal[SPLITS + SUBSETS]  # a split's rows, or a subset's (data/ingest/subsets.parquet)


class BootstrapParams(Strict):
    resamples: int = Field(ge=2)  # an interval needs at least two resamples
    seed: int


class EvaluateParams(Strict):
    bootstrap: BootstrapParams
    selection_subset: RowSet
    subset: RowSet
    headline: list[str]
    ks: list[Annotated[int, Field(ge=1)]] = Field(min_length=1)
    roc_points: int = Field(ge=2)  # a curve needs its two ends
    conventions: Conventions

    @field_validator("headline")
    @classmethod
    def _known_metrics(cls, headline: list[str]) -> list[str]:
        metric_ks(headline)
        return headline


def evaluation_rows(subset: str, interactions, subsets):
    """Row ids of a named subset, or of every row of a split when `subset` is a split name."""
    if subset in SPLITS:
        return interactions.loc[interactions["split"] == subset, "row"].to_numpy()
    rows = subsets.loc[subsets["subset"] == subset, "row"].to_numpy()
    if rows.size == 0:
        raise BadInput(f"{layout.SUBSETS}: subset '{subset}' is empty or unknown")
    return rows


def choose_best_cf(params: EvaluateParams, predictions: dict, interactions, subsets) -> tuple[str, float]:
    """The registry's CF model with the best AUC on the selection subset, which may not contain test rows."""
    rows = evaluation_rows(params.selection_subset, interactions, subsets)
    if (interactions.loc[interactions["row"].isin(rows), "split"] == "test").any():
        raise BadParams(f"evaluate.selection_subset '{params.selection_subset}' holds test rows: "
                         "the best CF model must be chosen without them")
    candidates = {}
    for name in [entry.name for entry in registry.models("cf") if entry.evaluated]:
        scores = pointwise_scores(predictions[name], interactions, rows, str(layout.predictions(name)))
        candidates[name] = (scores["label"].to_numpy(), scores["score"].to_numpy())
    return best_by_auc(candidates)


def main() -> None:
    params = load_section("evaluate", EvaluateParams)
    pairs = registry.comparisons()
    interactions = read_frame(layout.INTERACTIONS, INTERACTIONS)
    subsets = read_frame(layout.SUBSETS, SUBSET_ROWS)
    candidates = read_frame(layout.TOPN_CANDIDATES, TOPN_CANDIDATES)
    predictions = {name: read_frame(layout.predictions(name), PREDICTIONS) for name in registry.evaluated()}
    rows = evaluation_rows(params.subset, interactions, subsets)
    warm_users = interactions.loc[interactions["split"] == "train", "user"].unique()
    resamples = Resamples(
        pointwise=resample_counts(interactions.loc[interactions["row"].isin(rows), "user"].nunique(),
                                  params.bootstrap.resamples, params.bootstrap.seed, stream=0),
        topn=resample_counts(candidates["user"].nunique(), params.bootstrap.resamples,
                             params.bootstrap.seed, stream=1),
    )
    evaluations = {}
    for name, frame in predictions.items():
        where = str(layout.predictions(name))
        # a model with top-N rows only (row -1: e.g. the RDRec student) has no pointwise metrics
        pointwise = pointwise_scores(frame, interactions, rows, where) if (frame["row"] >= 0).any() else None
        topn = topn_scores(frame, candidates, where)
        if pointwise is None and topn is None:
            raise BadInput(f"{where}: no scored rows (neither evaluation rows nor top-N candidates, row -1)")
        evaluations[name] = measure_model(
            pointwise, topn,
            warm_users, resamples, params.ks, params.headline, params.roc_points, params.conventions)
    best_cf = choose_best_cf(params, predictions, interactions, subsets) if registry.models("cf") else None

    topn_headline = [metric for metric in params.headline if metric.startswith("topn_")]
    for name, evaluation in evaluations.items():
        comparisons = {f"vs_{other}": paired_report(evaluation.groups["all"],
                                                    evaluations[other].groups["all"], params.headline)
                       for other in pairs.get(name, [])}
        if best_cf is not None:
            comparisons["vs_best_cf"] = {
                "model": best_cf[0], "selection_auc": best_cf[1],
                **paired_report(evaluation.groups["all"], evaluations[best_cf[0]].groups["all"], params.headline),
            }
        report = model_report(evaluation, comparisons, params.headline)
        write_json(report, layout.metrics(name))
        roc = evaluation.roc
        if roc is not None:
            write_json({"roc": [dict(zip(roc, point)) for point in zip(*roc.values())]},
                       layout.roc(name))
        topn_shown = ", ".join(f"{metric} {_shown(report, metric)}" for metric in topn_headline)
        print(f"evaluate {name}: {params.subset} {report['n_rows']} rows, {report['n_users']} users: "
              f"AUC {_shown(report, 'auc')} UAUC {_shown(report, 'uauc')}, "
              f"top-N {report.get('topn_users', 0)} users: {topn_shown}")
    if best_cf is not None:
        print(f"best CF model on {params.selection_subset}: {best_cf[0]} (AUC {best_cf[1]:.4f})")


def _shown(report: dict, name: str) -> str:
    values = [report.get(key) for key in (name, f"{name}_low", f"{name}_high")]
    return "n/a" if None in values else "{:.4f} [{:.4f}, {:.4f}]".format(*values)


if __name__ == "__main__":
    run_stage(main)
