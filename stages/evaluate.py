"""Evaluate stage: every evaluated model of the registry (pipeline/registry.py) on the same
`evaluate.subset` rows, with user-level bootstrap intervals, warm/cold groups and paired comparisons.

Usage: python -m stages.evaluate
Reads data/predictions/<model>.parquet for each model and data/ingest/{interactions,subsets,
topn_candidates}.parquet. Writes, per model, metrics/<model>.json (the headline metrics with their
intervals and counts: `dvc metrics show`), metrics/detail/<model>.json (warm and cold users, every
cutoff, ties, comparisons) and plots/roc/<model>.json, each stamped with its ingest and params
(pipeline/provenance.py), all models' files together or none. Each model is compared (`vs_<other>`) with the models its registry
entry names (`compared_with`) and with the best CF model (`vs_best_cf`), chosen by AUC among the
registry's CF models on `evaluate.selection_subset`, which must hold no test rows.
`evaluate.conventions` picks the ranking metrics' conventions: this project's or ThinkRec's
(pipeline/metrics/ranking.py).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from pydantic import Field, field_validator

from pipeline import layout, registry
from pipeline.artifacts import read_frame, write_json_files
from pipeline.metrics.bootstrap import resample_counts
from pipeline.metrics.compare import RowSet, best_by_auc, cf_selection_aucs, evaluation_rows
from pipeline.metrics.ranking import Conventions
from pipeline.metrics.report import (
    Resamples, measure_model, metric_ks, model_report, paired_report, split_report,
)
from pipeline.metrics.scores import pointwise_scores, topn_scores
from pipeline.metrics.full import full_table
from pipeline.ranking.catalogue import evaluated_users
from pipeline.ranking.params import RankingParams
from pipeline.schemas import INTERACTIONS, ITEMS, PREDICTIONS, RANKS, SUBSET_ROWS, TOPN_CANDIDATES
from pipeline.errors import BadInput, BadParams, run_stage
from pipeline.params import Strict, load_section
from stages.stamp import stage_stamp


RERANKERS = ("llm", "experts", "fused")  # registry families that re-rank the retriever's top K (full_retrieved)


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
    full_ks: list[Annotated[int, Field(ge=1)]] = Field(min_length=1)

    @field_validator("headline")
    @classmethod
    def _known_metrics(cls, headline: list[str]) -> list[str]:
        metric_ks(headline)
        return headline


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
    ranking = load_section("ranking", RankingParams)
    ranked_users = evaluated_users(interactions, len(read_frame(layout.ITEMS, ITEMS)), ranking)
    resamples = replace(resamples, **{
        kind: resample_counts(ranked_users.task_users(task).size, params.bootstrap.resamples,
                              params.bootstrap.seed, stream=stream)
        for kind, task, stream in (("full", "topn", 2), ("next", "next", 3))})
    full_ks = sorted(set(params.full_ks) | set(metric_ks([name for name in params.headline
                                                          if name.startswith(("full_", "next_"))])))
    if ranking.retrieve_k < full_ks[-1]:
        raise BadParams(f"params.yaml: ranking.retrieve_k ({ranking.retrieve_k}) is below the largest full-catalogue "
                        f"cutoff of evaluate.full_ks / evaluate.headline ({full_ks[-1]}): a re-ranker's list of "
                        f"{ranking.retrieve_k} cannot place a target at {full_ks[-1]}")
    evaluations = {}
    for name, frame in predictions.items():
        where = str(layout.predictions(name))
        # a model with top-N rows only (row -1: e.g. the RDRec student) has no pointwise metrics
        pointwise = pointwise_scores(frame, interactions, rows, where) if (frame["row"] >= 0).any() else None
        topn = topn_scores(frame, candidates, where)
        ranked = ranked_tables(name, ranked_users, full_ks)
        if pointwise is None and topn is None and not ranked:
            raise BadInput(f"{where}: no scored rows (neither evaluation rows nor top-N candidates, row -1)")
        evaluations[name] = measure_model(
            pointwise, topn,
            warm_users, resamples, params.ks, params.headline, params.roc_points, params.conventions, ranked)
    best_cf = (best_by_auc(cf_selection_aucs(params.selection_subset, predictions, interactions, subsets))
               if registry.models("cf") else None)  # the rule cf.model: auto feeds the LLM stages with

    topn_headline = [metric for metric in params.headline if metric.startswith(("topn_", "full_", "next_"))]
    files, lines = {}, []
    headline_stamp, detail_stamp = stage_stamp("evaluate", dvc_metric=True), stage_stamp("evaluate")
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
        headline, detail = split_report(report, params.headline)
        files[layout.metrics(name)] = {**headline, **headline_stamp}
        files[layout.metrics_detail(name)] = {**detail, **detail_stamp}
        roc = evaluation.roc
        if roc is not None:
            files[layout.roc(name)] = {"roc": [dict(zip(roc, point)) for point in zip(*roc.values())]}
        topn_shown = ", ".join(f"{metric} {_shown(report, metric)}" for metric in topn_headline)
        lines.append(f"evaluate {name}: {params.subset} {report['n_rows']} rows, {report['n_users']} users: "
                     f"AUC {_shown(report, 'auc')} UAUC {_shown(report, 'uauc')}, "
                     f"ranking ({report.get('full_users', 0)} full-catalogue, {report.get('topn_users', 0)} sampled users): "
                     f"{topn_shown}")
    write_json_files(files)  # every model's files or none: no file of this run beside one of the last
    print("\n".join(lines))
    if best_cf is not None:
        print(f"best CF model on {params.selection_subset}: {best_cf[0]} (AUC {best_cf[1]:.4f})")


def ranked_tables(name: str, users, ks: list[int]) -> dict:
    """The full-catalogue tables of a registry model that ranks (data/ranking/<name>.parquet): the
    liked test items ("full") and, where the model ranks it, the next item ("next")."""
    if name not in registry.ranking_models():
        return {}
    where = str(layout.ranking(name))
    ranks = read_frame(layout.ranking(name), RANKS)
    reranker = registry.get_model(name).family in RERANKERS
    tables = {"full": full_table(ranks, users.targets, "topn", ks, where, reranker)}
    if (ranks["task"] == "next").any():
        tables["next"] = full_table(ranks, users.targets, "next", ks, where, reranker)
    return tables


def _shown(report: dict, name: str) -> str:
    values = [report.get(key) for key in (name, f"{name}_low", f"{name}_high")]
    return "n/a" if None in values else "{:.4f} [{:.4f}, {:.4f}]".format(*values)


if __name__ == "__main__":
    run_stage(main)
