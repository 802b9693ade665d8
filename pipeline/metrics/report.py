"""One model's metrics for all, warm and cold users, with bootstrap intervals, as a JSON-ready dict.

Headline metrics (auc, uauc, ndcg@K, map@K, hr@K, topn_hr@K, topn_ndcg@K) get a 95% user-level
bootstrap interval (`<metric>_low`, `<metric>_high`); the other per-K metrics go in `all_k`.
A user is warm with at least one train interaction, cold otherwise. Under the `reference` ranking
conventions (pipeline/metrics/ranking.py) the report says so (`conventions`) and counts the users
the ranking metrics average over (`n_rank_users`); under the default `project` neither key is
written (its ranked users are the UAUC users, `n_uauc_users`), so default files keep their bytes.

`split_report` cuts that report in two files: the headline file (metrics/<model>.json, the one DVC
shows) holds the headline metrics' values, their intervals as `interval: {metric: [low, high]}` and
the counts of HEADLINE_COUNTS; the detail file holds the rest (every group, cutoff, tie count and
comparison). `dvc metrics show` tabulates a file's numbers and strings only (a list is an unsupported
type to it), so the intervals stay in the headline file without doubling its columns.
`join_report` puts the two back into the one report the tables and the HTML report read.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.metrics.bootstrap import percentile_interval
from pipeline.metrics.classification import roc_points
from pipeline.metrics.per_user import UserTable, pointwise_table, topn_table, weighted_metrics
from pipeline.metrics.ranking import Conventions
from pipeline.metrics.ties import tied_pairs

GROUPS = ("all", "warm", "cold")
METRIC_NAME = re.compile(r"^(auc|uauc|(full|next)_retrieved|"
                         r"(ndcg|map|hr|topn_hr|topn_ndcg|(full|next)_(hr|ndcg|recall))@[1-9][0-9]*)$")
# the full-catalogue metrics' tables (pipeline/metrics/full.py), by the prefix of their names
RANKED_KINDS = {"full": "full_", "next": "next_"}


@dataclass(frozen=True)
class Resamples:
    pointwise: np.ndarray  # (B, U) draws of each evaluated user, users ascending
    topn: np.ndarray  # (B, T) draws of each top-N user, users ascending
    full: np.ndarray | None = None  # (B, F) draws of each user with a liked test item (full-catalogue ranking)
    next: np.ndarray | None = None  # (B, N) draws of each user with a next-item target (next-item ranking)


@dataclass(frozen=True)
class GroupResult:
    point: dict[str, float]  # every metric on the group's users
    resampled: dict[str, np.ndarray]  # headline metric -> (B,) its value on each resample
    counts: dict[str, float]  # n_rows, n_users, n_uauc_users, positive_rate, topn_users (+ n_rank_users)


@dataclass(frozen=True)
class ModelEvaluation:
    groups: dict[str, GroupResult]  # GROUPS -> result
    ties: dict[str, int] | None  # None: no pointwise rows (a top-N-only model)
    roc: dict[str, list[float]] | None
    conventions: Conventions = "project"  # the ranking metrics' (pipeline/metrics/ranking.py)


def metric_ks(names: list[str]) -> list[int]:
    """The cutoffs K named in metric names such as ndcg@5 (ValueError on an unknown name)."""
    for name in names:
        if not METRIC_NAME.match(name):
            raise ValueError(f"unknown metric '{name}': expected auc, uauc, (ndcg|map|hr|topn_hr|topn_ndcg)@K, "
                             "(full|next)_(hr|ndcg|recall)@K or (full|next)_retrieved")
    return sorted({int(name.split("@")[1]) for name in names if "@" in name})


def measure_model(
    scores: pd.DataFrame | None,
    topn: pd.DataFrame | None,
    warm_users: np.ndarray,
    resamples: Resamples,
    ks: list[int],
    headline: list[str],
    max_roc_points: int,
    conventions: Conventions = "project",
    ranked: dict[str, UserTable] | None = None,
) -> ModelEvaluation:
    """Metrics of `scores` (row, user, label, score), of the top-N candidates and of the
    full-catalogue `ranked` tables ("full", "next": pipeline/metrics/full.py); any may be None
    (not scored): a top-N-only model has no pointwise metrics, ties or ROC. `conventions`
    applies to ndcg/map/hr@K of the pointwise rows (top-N metrics have one convention)."""
    ranked = ranked or {}
    if scores is None and topn is None and not ranked:
        raise ValueError("a model needs pointwise, top-N or full-catalogue scores")
    unknown = set(ranked) - set(RANKED_KINDS)
    if unknown:
        raise ValueError(f"unknown ranked tables {sorted(unknown)} (known: {sorted(RANKED_KINDS)})")
    ks = sorted(set(ks) | set(metric_ks([n for n in headline if not n.startswith(tuple(RANKED_KINDS.values()))])))
    tables = {}
    if scores is not None:
        users = scores["user"].to_numpy()
        labels = scores["label"].to_numpy()
        values = scores["score"].to_numpy(dtype=np.float64)
        tables["pointwise"] = pointwise_table(users, labels, values, ks, conventions)
    if topn is not None:
        tables["topn"] = topn_table(topn["user"].to_numpy(), topn["positive"].to_numpy(),
                                    topn["score"].to_numpy(), ks)
    tables.update(ranked)
    draws = {"pointwise": resamples.pointwise, "topn": resamples.topn, "full": resamples.full, "next": resamples.next}
    for kind, table in tables.items():
        if draws[kind] is None:
            raise ValueError(f"{kind} metrics without {kind} resamples")
        if draws[kind].shape[1] != table.users.size:
            raise ValueError(f"{kind} resamples cover {draws[kind].shape[1]} users, the model's rows {table.users.size}")
    rank_users = conventions != "project"  # counted apart from the UAUC users only when they differ
    groups = {group: _measure_group(tables, draws, warm_users, group, headline, rank_users) for group in GROUPS}
    if scores is None:
        return ModelEvaluation(groups=groups, ties=None, roc=None, conventions=conventions)
    return ModelEvaluation(groups=groups, ties=tied_pairs(users, values),
                           roc=roc_points(labels, values, max_roc_points), conventions=conventions)


def _measure_group(tables: dict[str, UserTable], draws: dict[str, np.ndarray], warm_users: np.ndarray,
                   group: str, headline: list[str], rank_users: bool) -> GroupResult:
    point: dict[str, float] = {}
    resampled: dict[str, np.ndarray] = {}
    counts: dict[str, float] = {}
    if "pointwise" not in tables:  # a top-N-only model: no evaluation rows
        counts.update(n_rows=0, n_users=0, n_uauc_users=0, positive_rate=math.nan)
        if rank_users:
            counts["n_rank_users"] = 0
    for kind, table in tables.items():
        warm = np.isin(table.users, warm_users)
        mask = {"all": np.ones_like(warm), "warm": warm, "cold": ~warm}[group].astype(np.float64)
        point.update({name: float(value[0]) for name, value in weighted_metrics(table, mask[None]).items()})
        wanted = [name for name in headline if name in table.values or (name == "auc" and table.runs is not None)]
        if wanted:
            all_resamples = weighted_metrics(table, draws[kind] * mask)
            resampled.update({name: all_resamples[name] for name in wanted})
        if kind == "pointwise":
            rows = float(mask @ table.rows)
            counts.update(n_rows=int(rows), n_users=int(mask.sum()),
                          n_uauc_users=int(mask @ ~np.isnan(table.values["uauc"])),
                          positive_rate=float(mask @ table.positives) / rows if rows else math.nan)
            if rank_users:  # every ranking metric counts the same users: take the first, if any
                ranking = next((values for name, values in table.values.items() if "@" in name), None)
                counts["n_rank_users"] = 0 if ranking is None else int(mask @ ~np.isnan(ranking))
        else:
            counts[f"{kind}_users"] = int(mask.sum())
    return GroupResult(point=point, resampled=resampled, counts=counts)


def group_report(result: GroupResult, headline: list[str]) -> dict:
    """Counts, each headline metric with `_low`/`_high`, and the other per-K metrics in `all_k`."""
    report: dict = dict(result.counts)
    for name in headline:
        if name in result.point:
            report[name] = result.point[name]
            report[f"{name}_low"], report[f"{name}_high"] = percentile_interval(result.resampled[name])
    report["all_k"] = {name: value for name, value in result.point.items()
                       if name not in headline and name not in ("auc", "uauc")}  # per-K and the retrieved shares
    return report


def paired_report(model: GroupResult, reference: GroupResult, headline: list[str]) -> dict:
    """model - reference for each headline metric both have, with the interval of the difference
    over the shared resamples (a model against itself: exactly 0 [0, 0])."""
    report: dict = {}
    for name in headline:
        if name in model.point and name in reference.point:
            report[name] = model.point[name] - reference.point[name]
            difference = model.resampled[name] - reference.resampled[name]
            report[f"{name}_low"], report[f"{name}_high"] = percentile_interval(difference)
    return report


def model_report(evaluation: ModelEvaluation, comparisons: dict[str, dict], headline: list[str]) -> dict:
    """metrics/<model>.json: all users at the top level, `warm`, `cold`, `ties` and the
    `vs_<reference>` comparisons (already built by paired_report) nested; NaN written as null.
    `conventions` only when not the default `project` (default files keep their bytes)."""
    report = group_report(evaluation.groups["all"], headline)
    if evaluation.conventions != "project":
        report["conventions"] = evaluation.conventions
    report["warm"] = group_report(evaluation.groups["warm"], headline)
    report["cold"] = group_report(evaluation.groups["cold"], headline)
    report["ties"] = evaluation.ties
    report.update(comparisons)
    return json_safe(report)


def json_safe(value):
    """`value` with NaN floats as None and numpy scalars as Python numbers (JSON has no NaN)."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


HEADLINE_COUNTS = ("n_rows", "n_users", "topn_users", "full_users")  # beside the headline metrics: the README shows them
INTERVAL = "interval"  # the headline file's key of {metric: [low, high]}


def split_report(report: dict, headline: list[str]) -> tuple[dict, dict]:
    """(headline file, detail file) of a model_report (see the module docstring)."""
    named = [name for name in headline if name in report]
    top = {name: report[name] for name in named}
    top[INTERVAL] = {name: [report.get(f"{name}_low"), report.get(f"{name}_high")] for name in named}
    top.update({key: report[key] for key in HEADLINE_COUNTS if key in report})
    if "conventions" in report:
        top["conventions"] = report["conventions"]
    moved = {*top, *(f"{name}_{side}" for name in named for side in ("low", "high"))}
    return top, {key: value for key, value in report.items() if key not in moved}


def join_report(top: dict, detail: dict | None) -> dict:
    """The one report of a headline file and its detail file (None: absent; the report then holds
    the headline metrics, their intervals and counts only)."""
    report = dict(detail or {})
    for key, value in top.items():
        if key == INTERVAL and isinstance(value, dict):
            for name, bounds in value.items():
                low, high = bounds if isinstance(bounds, list) and len(bounds) == 2 else (None, None)
                report[f"{name}_low"], report[f"{name}_high"] = low, high
        else:
            report[key] = value
    return report
