"""The evaluate stage's CLI on tiny ingest artifacts and hand-made predictions of several models."""
import json
import math
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from pipeline import registry
from pipeline.artifacts import write_frame
from pipeline.metrics.report import join_report
from pipeline.provenance import ingest_fingerprint, params_hash
from pipeline.registry import ModelEntry
from pipeline.ranking.catalogue import TASKS, ranking_users
from pipeline.ranking.ranks import catalogue_ranks, list_ranks
from pipeline.schemas import INTERACTIONS, PREDICTIONS, RANKS
from registry_swap import run_with_models
from synthetic_ingest import write_synthetic_ingest

ROOT = Path(__file__).resolve().parents[1]
COLD_USERS = [0, 1, 2, 3, 4, 5]  # their train rows are dropped: no train interaction = cold
# the stage's models come from the registry: these runs swap in their own (`run` below)
MODELS = (ModelEntry("cfgood", "cf", "cf@cfgood", topn=True), ModelEntry("cfbad", "cf", "cf@cfbad", topn=True),
          ModelEntry("llm", "llm", "llm", compared_with=("llm_ablated",)), ModelEntry("llm_ablated", "llm", "llm_ablated"),
          ModelEntry("not_evaluated", "llm", "not_evaluated", evaluated=False))
STUDENTS = (ModelEntry("student", "rdrec", "student", pointwise=False, topn=True, compared_with=("student_ablated",),
                       ranks=False),
            ModelEntry("student_ablated", "rdrec", "student_ablated", pointwise=False, topn=True, ranks=False))
PARAMS = {"evaluate": {
    "bootstrap": {"resamples": 200, "seed": 7},
    "selection_subset": "valid_small",
    "subset": "test_small",
    "headline": ["auc", "uauc", "ndcg@5", "topn_hr@10", "topn_ndcg@10", "full_hr@5"],
    "ks": [1, 5, 10],
    "roc_points": 50,
    "conventions": "project",
    "full_ks": [5, 10],
}, "ranking": {"retrieve_k": 10, "max_users": None, "seed": 3}}


def noisy_scores(labels: np.ndarray, noise: float, seed: int) -> np.ndarray:
    """label + noise, rounded to force ties."""
    return np.round(labels + np.random.default_rng(seed).normal(scale=noise, size=labels.size), 1)


def topn_scores_ranked_by_user(candidates: pd.DataFrame) -> np.ndarray:
    """User u's positive scores 2.0, below (u % 3) of its negatives (2.5): its 0-based rank is u % 3."""
    negative_index = candidates[candidates["positive"] == 0].groupby("user").cumcount()
    above = negative_index.reindex(candidates.index, fill_value=99) < candidates["user"] % 3
    return np.where(above, 2.5, candidates["positive"] * 2.0)


def write_predictions(directory: Path, name: str, pointwise: pd.DataFrame, topn: pd.DataFrame | None = None) -> None:
    frames = [pointwise[["row", "user", "item", "score"]]]
    if topn is not None:
        frames.append(topn[["user", "item", "score"]].assign(row=-1))
    write_frame(pd.concat(frames, ignore_index=True), directory / f"data/predictions/{name}.parquet", PREDICTIONS)


@pytest.fixture()
def project(tmp_path):
    """Four models: cfgood is good on valid rows only, cfbad on test rows only (so choosing on test
    would pick cfbad); the LLM-style models score valid + test rows and no top-N candidates."""
    interactions = write_synthetic_ingest(tmp_path)
    interactions = interactions[~(interactions["user"].isin(COLD_USERS) & (interactions["split"] == "train"))]
    write_frame(interactions, tmp_path / "data/ingest/interactions.parquet", INTERACTIONS)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(PARAMS, sort_keys=False))
    candidates = pd.read_parquet(tmp_path / "data/ingest/topn_candidates.parquet")
    labels = interactions["label"].to_numpy()
    valid = (interactions["split"] == "valid").to_numpy()
    topn = candidates.assign(score=topn_scores_ranked_by_user(candidates))
    write_predictions(tmp_path, "cfgood", interactions.assign(score=np.where(valid, noisy_scores(labels, 0.3, 1), noisy_scores(labels, 3.0, 2))), topn)
    write_predictions(tmp_path, "cfbad", interactions.assign(score=np.where(valid, noisy_scores(labels, 3.0, 3), noisy_scores(labels, 0.3, 4))),
                      candidates.assign(score=noisy_scores(candidates["positive"].to_numpy(), 1.0, 5)))
    scored = interactions[interactions["split"] != "train"]
    write_predictions(tmp_path, "llm", scored.assign(score=noisy_scores(scored["label"].to_numpy(), 1.0, 6)))
    write_predictions(tmp_path, "llm_ablated", scored.assign(score=noisy_scores(scored["label"].to_numpy(), 2.0, 7)))
    write_ranks(tmp_path, interactions)
    return tmp_path, interactions


def write_ranks(directory: Path, interactions: pd.DataFrame) -> None:
    """data/ranking/<model>.parquet: the CF models score the whole catalogue (cfgood puts every
    user's targets first), the LLM-style models re-rank 10-item lists (llm_ablated's miss the targets)."""
    n_items = len(pd.read_parquet(directory / "data/ingest/items.parquet"))
    users = ranking_users(interactions, n_items, None, 3)
    liked_pairs = set(map(tuple, users.targets.loc[users.targets["task"] == "topn", ["user", "item"]].to_numpy()))
    next_pairs = set(map(tuple, users.targets.loc[users.targets["task"] == "next", ["user", "item"]].to_numpy()))
    score = lambda user, item: (2 + item / 1e4 if (user, item) in liked_pairs else float((user, item) in next_pairs))
    good = lambda idx: np.array([[score(users.users[i], item) for item in range(n_items)] for i in idx])
    noise = np.random.default_rng(8).normal(size=(users.users.size, n_items))
    write_frame(catalogue_ranks(users, good, TASKS), directory / "data/ranking/cfgood.parquet", RANKS)
    write_frame(catalogue_ranks(users, lambda idx: noise[idx], TASKS), directory / "data/ranking/cfbad.parquet", RANKS)
    liked = users.targets[users.targets["task"] == "topn"].groupby("user")["item"].apply(list)
    lists = {int(u): np.array(items + [i for i in users.candidates(int(np.flatnonzero(users.users == u)[0]))
                                       if i not in items][:10 - len(items)]) for u, items in liked.items()}
    write_frame(list_ranks(users, lists, ("topn",)), directory / "data/ranking/llm.parquet", RANKS)
    misses = {u: np.array([i for i in items if i not in set(liked[u])][:10]) for u, items in lists.items()}
    write_frame(list_ranks(users, misses, ("topn",)), directory / "data/ranking/llm_ablated.parquet", RANKS)


def run(directory: Path, module: str, models: tuple = MODELS) -> subprocess.CompletedProcess:
    return run_with_models(directory, module, models)


def metrics_of(directory: Path, model: str) -> dict:
    """A model's evaluation: metrics/<model>.json joined with metrics/detail/<model>.json."""
    return join_report(json.loads((directory / f"metrics/{model}.json").read_text()),
                       json.loads((directory / f"metrics/detail/{model}.json").read_text()))


def metrics_files(directory: Path) -> dict[str, bytes]:
    return {str(path.relative_to(directory)): path.read_bytes() for path in sorted((directory / "metrics").rglob("*.json"))}


def subset_rows(directory: Path, interactions: pd.DataFrame, subset: str) -> pd.DataFrame:
    rows = pd.read_parquet(directory / "data/ingest/subsets.parquet").query("subset == @subset")["row"]
    return interactions.set_index("row").loc[rows]


def ndcg_at_5_by_hand(rows: pd.DataFrame, scores: pd.Series) -> float:
    """Mean NDCG@5 over users with both labels; equal scores rank negatives first (pessimistic)."""
    values = []
    for _, user in rows.assign(score=scores.to_numpy()).groupby("user"):
        if 0 < user["label"].sum() < len(user):
            ranked = [label for _, label in sorted(zip(-user["score"], user["label"]))][:5]
            dcg = sum(label / math.log2(i + 2) for i, label in enumerate(ranked))
            ideal = sum(1 / math.log2(i + 2) for i in range(min(5, user["label"].sum())))
            values.append(dcg / ideal)
    return sum(values) / len(values)


def test_every_model_gets_metrics_intervals_groups_and_comparisons(project):
    directory, interactions = project
    result = run(directory, "stages.evaluate")
    assert result.returncode == 0, result.stderr
    test_rows = subset_rows(directory, interactions, "test_small")
    good = pd.read_parquet(directory / "data/predictions/cfgood.parquet").query("row >= 0").set_index("row")
    metrics = metrics_of(directory, "cfgood")
    assert metrics["auc"] == pytest.approx(roc_auc_score(test_rows["label"], good.loc[test_rows.index, "score"]))
    assert metrics["ndcg@5"] == pytest.approx(ndcg_at_5_by_hand(test_rows, good.loc[test_rows.index, "score"]))
    assert metrics["n_rows"] == len(test_rows) and metrics["n_users"] == test_rows["user"].nunique()
    ranks = pd.read_parquet(directory / "data/ingest/topn_candidates.parquet")["user"].drop_duplicates() % 3
    assert metrics["all_k"]["topn_hr@1"] == pytest.approx((ranks == 0).mean())
    assert metrics["topn_ndcg@10"] == pytest.approx((1 / np.log2(ranks + 2)).mean())
    for name in PARAMS["evaluate"]["headline"]:
        assert metrics[f"{name}_low"] <= metrics[name] <= metrics[f"{name}_high"]
    cold = test_rows["user"].isin(COLD_USERS)
    assert metrics["cold"]["n_users"] == test_rows.loc[cold, "user"].nunique() > 0
    assert metrics["cold"]["n_rows"] + metrics["warm"]["n_rows"] == metrics["n_rows"]
    assert metrics["cold"]["auc"] == pytest.approx(roc_auc_score(test_rows.loc[cold, "label"], good.loc[test_rows.index[cold], "score"]))
    assert metrics["ties"]["distinct_scores"] == good.loc[test_rows.index, "score"].nunique()
    roc = json.loads((directory / "plots/roc/cfgood.json").read_text())["roc"]
    assert len(roc) <= 50 and roc[0] == {"fpr": 0.0, "tpr": 0.0} and roc[-1] == {"fpr": 1.0, "tpr": 1.0}


def test_the_headline_file_holds_the_headline_the_detail_file_the_rest_both_stamped(project):
    directory, _ = project
    dvc_yaml = {"stages": {"evaluate": {"cmd": "python -m stages.evaluate", "params": ["evaluate"]}}}
    (directory / "dvc.yaml").write_text(yaml.safe_dump(dvc_yaml))  # the keys the stamp hashes
    assert run(directory, "stages.evaluate").returncode == 0
    top = json.loads((directory / "metrics/cfgood.json").read_text())
    detail = json.loads((directory / "metrics/detail/cfgood.json").read_text())
    headline = PARAMS["evaluate"]["headline"]
    assert set(top) == {*headline, "interval", "n_rows", "n_users", "topn_users", "full_users", "ingest", "params",
                        "params_keys"}
    assert all(low <= top[name] <= high for name, (low, high) in top["interval"].items()) and set(top["interval"]) == set(headline)
    assert {"warm", "cold", "all_k", "ties", "vs_best_cf", "n_uauc_users", "positive_rate"} <= set(detail)
    assert not {*headline, "interval", *(f"{name}_low" for name in headline)} & set(detail)
    assert top["ingest"] == detail["ingest"] == ingest_fingerprint(directory / "data/ingest")
    evaluate = {"evaluate": PARAMS["evaluate"]}  # the section the dvc.yaml above declares
    assert top["params"] == detail["params"] == params_hash(["evaluate"], evaluate) and top["params_keys"] == ["evaluate"]
    assert "params_values" not in top and detail["params_values"] == evaluate  # a DVC metric shows no params


def test_best_cf_is_chosen_on_validation_rows_and_recorded(project):
    directory, interactions = project
    assert run(directory, "stages.evaluate").returncode == 0
    valid_rows = subset_rows(directory, interactions, "valid_small")
    good = pd.read_parquet(directory / "data/predictions/cfgood.parquet").query("row >= 0").set_index("row")
    best = metrics_of(directory, "llm")["vs_best_cf"]
    assert best["model"] == "cfgood"  # although cfbad has the higher test AUC
    assert metrics_of(directory, "cfbad")["auc"] > metrics_of(directory, "cfgood")["auc"]
    assert best["selection_auc"] == pytest.approx(roc_auc_score(valid_rows["label"], good.loc[valid_rows.index, "score"]))
    own = metrics_of(directory, "cfgood")["vs_best_cf"]
    assert all(own[key] == 0.0 for key in own if key not in ("model", "selection_auc"))
    bad = metrics_of(directory, "cfbad")
    assert bad["vs_best_cf"]["auc"] == pytest.approx(bad["auc"] - metrics_of(directory, "cfgood")["auc"])
    assert bad["vs_best_cf"]["auc_low"] > 0  # cfbad is clearly better on test rows


def test_models_without_topn_have_no_topn_keys_and_ablations_are_paired(project):
    directory, _ = project
    assert run(directory, "stages.evaluate").returncode == 0
    llm, ablated = metrics_of(directory, "llm"), metrics_of(directory, "llm_ablated")
    flat = json.dumps(llm)
    assert "topn" not in flat and llm["uauc"] is not None
    assert set(llm) >= {"vs_llm_ablated", "vs_best_cf", "warm", "cold", "ties", "all_k"}
    assert llm["vs_llm_ablated"]["auc"] == pytest.approx(llm["auc"] - ablated["auc"])
    assert not any(key.startswith("vs_") and key != "vs_best_cf" for key in ablated)


def test_a_rerun_writes_the_same_bytes(project):
    directory, _ = project
    assert run(directory, "stages.evaluate").returncode == 0
    first = metrics_files(directory)
    assert run(directory, "stages.evaluate").returncode == 0
    assert first == metrics_files(directory) and len(first) == 2 * 4  # a headline and a detail file per model


def reference_ranking_by_hand(rows: pd.DataFrame, scores: pd.Series, k: int) -> tuple[float, float]:
    """ThinkRec's mean NDCG@k and MAP@k: users with >= 2 rows, single-label ones included (0 without
    positives), equal scores in row order, AP divided by all the user's positives."""
    ndcg, ap = [], []
    for _, user in rows.assign(score=scores.to_numpy()).groupby("user"):
        if len(user) < 2:
            continue
        ranked = [label for _, _, label in sorted(zip(-user["score"], user.index, user["label"]))]
        positives = sum(ranked)
        dcg = sum(label / math.log2(i + 2) for i, label in enumerate(ranked[:k]))
        ideal = sum(1 / math.log2(i + 2) for i in range(min(k, positives)))
        ndcg.append(dcg / ideal if ideal else 0.0)
        hits = np.cumsum(ranked[:k])
        ap.append(sum(hits[i] / (i + 1) for i in range(len(hits)) if ranked[i]) / positives if positives else 0.0)
    return sum(ndcg) / len(ndcg), sum(ap) / len(ap)


def test_reference_conventions_change_only_the_ranking_metrics_and_are_named(project):
    directory, interactions = project
    assert run(directory, "stages.evaluate").returncode == 0
    project_metrics = metrics_of(directory, "cfgood")
    params = {**PARAMS, "evaluate": {**PARAMS["evaluate"], "conventions": "reference"}}
    (directory / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = run(directory, "stages.evaluate")
    assert result.returncode == 0, result.stderr
    test_rows = subset_rows(directory, interactions, "test_small")
    good = pd.read_parquet(directory / "data/predictions/cfgood.parquet").query("row >= 0").set_index("row")
    metrics = metrics_of(directory, "cfgood")
    assert "conventions" not in project_metrics and metrics["conventions"] == "reference"
    ndcg, ap = reference_ranking_by_hand(test_rows, good.loc[test_rows.index, "score"], 5)
    assert metrics["ndcg@5"] == pytest.approx(ndcg) and metrics["all_k"]["map@5"] == pytest.approx(ap)
    assert metrics["ndcg@5"] != pytest.approx(project_metrics["ndcg@5"])
    assert metrics["n_rank_users"] == (test_rows.groupby("user").size() >= 2).sum() > metrics["n_uauc_users"]
    for name in ("auc", "auc_low", "uauc", "uauc_high", "n_uauc_users", "topn_hr@10", "topn_ndcg@10_low"):
        assert metrics[name] == project_metrics[name], name
    assert metrics["vs_best_cf"]["auc"] == project_metrics["vs_best_cf"]["auc"]


def test_missing_subset_rows_are_an_error(project):
    directory, interactions = project
    dropped = int(subset_rows(directory, interactions, "test_small").index[3])
    rows = interactions[(interactions["split"] == "test") & (interactions["row"] != dropped)]
    write_predictions(directory, "llm", rows.assign(score=0.5))
    result = run(directory, "stages.evaluate")
    assert result.returncode != 0
    assert "llm.parquet: no score for 1 of" in result.stderr and str(dropped) in result.stderr
    assert not (directory / "metrics/llm.json").exists()


def test_a_missing_ablation_model_is_an_error_naming_its_file(project):
    directory, _ = project
    (directory / "data/predictions/llm_ablated.parquet").unlink()
    result = run(directory, "stages.evaluate")
    assert result.returncode != 0 and "data/predictions/llm_ablated.parquet" in result.stderr


@pytest.mark.parametrize("key, value, message", [
    ("selection_subset", "test_small", "holds test rows"),
    ("headline", ["auc", "ndcg5"], "unknown metric 'ndcg5'"),
    ("conventions", "sklearn", "evaluate.conventions: Input should be 'project' or 'reference'"),
])
def test_bad_params_are_refused_with_the_reason(project, key, value, message):
    directory, _ = project
    params = json.loads(json.dumps(PARAMS))
    params["evaluate"][key] = value
    (directory / "params.yaml").write_text(yaml.safe_dump(params))
    result = run(directory, "stages.evaluate")
    assert result.returncode != 0 and message in result.stderr
    assert not (directory / "metrics").exists()


def test_results_table_prints_intervals_groups_and_differences(project):
    directory, _ = project
    assert run(directory, "stages.evaluate").returncode == 0
    result = run(directory, "stages.results_table")
    assert result.returncode == 0, result.stderr
    llm = metrics_of(directory, "llm")
    assert f"| llm | {llm['n_rows']} | {llm['n_users']} | {llm['auc']:.3f} [{llm['auc_low']:.3f}, {llm['auc_high']:.3f}] |" in result.stdout
    assert "| cfgood (cold) |" in result.stdout and "| llm (warm) |" in result.stdout
    assert f"| llm | llm_ablated | {llm['vs_llm_ablated']['auc']:+.3f} [" in result.stdout
    assert "| llm | best CF: cfgood |" in result.stdout


def test_a_comparison_with_an_unknown_model_is_an_error():
    with pytest.raises(ValueError, match="llm: refers to unknown model 'gone'"):
        registry.check((*MODELS[:2], ModelEntry("llm", "llm", "llm", compared_with=("cfgood", "gone"))))


def test_dvc_yaml_evaluate_stage_covers_every_evaluated_model_of_the_registry():
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["evaluate"]
    metrics = {next(iter(entry)) for entry in stage["metrics"]}
    outs = {next(iter(entry)): entry[next(iter(entry))] for entry in stage["outs"] if isinstance(entry, dict)}
    for model in registry.evaluated():
        assert f"data/predictions/{model}.parquet" in stage["deps"]
        assert f"metrics/{model}.json" in metrics
        assert outs[f"metrics/detail/{model}.json"] == {"cache": False}  # in git, not a DVC metric
    assert len(metrics) == len(registry.evaluated())


def test_a_topn_only_model_gets_topn_metrics_with_intervals_and_paired_ablation(project):
    """The RDRec student writes top-N candidate rows only: no pointwise metrics (null), no ROC file,
    top-N HR/NDCG with intervals, and its ablation's paired difference."""
    directory, _ = project
    candidates = pd.read_parquet(directory / "data/ingest/topn_candidates.parquet")
    student = candidates.assign(score=topn_scores_ranked_by_user(candidates))  # rank = user % 3
    ablated = candidates.assign(score=noisy_scores(candidates["positive"].to_numpy(), 3.0, 8))
    for name, frame in (("student", student), ("student_ablated", ablated)):
        write_predictions(directory, name, frame.iloc[:0].assign(row=0), frame)
    params = {**PARAMS, "evaluate": {**PARAMS["evaluate"],
                                     "headline": ["auc", "uauc", "topn_hr@1", "topn_hr@5", "topn_ndcg@5", "topn_ndcg@10"]}}
    (directory / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = run(directory, "stages.evaluate", MODELS + STUDENTS)
    assert result.returncode == 0, result.stderr
    metrics, other = metrics_of(directory, "student"), metrics_of(directory, "student_ablated")
    ranks = candidates["user"].drop_duplicates() % 3
    assert metrics["topn_hr@1"] == pytest.approx((ranks == 0).mean())
    assert metrics["topn_hr@5"] == 1.0 and metrics["topn_users"] == len(ranks)
    assert metrics["topn_ndcg@5"] == pytest.approx((1 / np.log2(ranks + 2)).mean())
    assert metrics["topn_hr@1_low"] <= metrics["topn_hr@1"] <= metrics["topn_hr@1_high"]
    assert "auc" not in metrics and "uauc" not in metrics and metrics["n_rows"] == 0 and metrics["ties"] is None
    assert not (directory / "plots/roc/student.json").exists()
    assert metrics["vs_student_ablated"]["topn_ndcg@10"] == pytest.approx(metrics["topn_ndcg@10"] - other["topn_ndcg@10"])
    assert "auc" not in metrics["vs_student_ablated"] and "auc" not in metrics["vs_best_cf"]
    table = run(directory, "stages.results_table", MODELS + STUDENTS)
    assert table.returncode == 0, table.stderr
    assert f"| student | 0 | 0 | — | — | {metrics['topn_hr@1']:.3f} [" in table.stdout


def test_a_model_without_any_scored_rows_is_an_error_naming_its_file(project):
    directory, interactions = project
    write_predictions(directory, "llm", interactions.iloc[:0].assign(score=0.0))
    not_ranking = tuple(replace(entry, ranks=False) if entry.name == "llm" else entry for entry in MODELS)
    result = run(directory, "stages.evaluate", not_ranking)
    assert result.returncode != 0 and "data/predictions/llm.parquet: no scored rows" in result.stderr
    # a model that ranks the catalogue is measured on that alone
    assert run(directory, "stages.evaluate").returncode == 0
    assert metrics_of(directory, "llm")["n_rows"] == 0 and metrics_of(directory, "llm")["full_users"] > 0


def test_full_catalogue_metrics_are_paired_and_counted(project):
    directory, interactions = project
    result = run(directory, "stages.evaluate")
    assert result.returncode == 0, result.stderr
    good, bad = metrics_of(directory, "cfgood"), metrics_of(directory, "cfbad")
    llm, ablated = metrics_of(directory, "llm"), metrics_of(directory, "llm_ablated")
    users = ranking_users(interactions, len(pd.read_parquet(directory / "data/ingest/items.parquet")), None, 3)
    assert good["full_users"] == llm["full_users"] == users.task_users("topn").size > 0
    # cfgood ranks every liked target first: every user hits, NDCG 1; llm's lists start with the targets
    assert good["full_hr@5"] == 1.0 and good["all_k"]["full_ndcg@10"] == pytest.approx(1.0)
    assert good["next_users"] == users.task_users("next").size and 0 < good["all_k"]["next_hr@10"] <= 1
    assert llm["full_hr@5"] == 1.0 and llm["all_k"]["full_retrieved"] == 1.0
    assert ablated["all_k"]["full_hr@10"] == 0.0 and ablated["all_k"]["full_retrieved"] == 0.0
    assert "full_retrieved" not in good["all_k"] and "next_hr@5" not in llm["all_k"]
    # cfbad: random scores over the catalogue, checked by hand
    ranks = pd.read_parquet(directory / "data/ranking/cfbad.parquet").query("task == 'topn'")
    assert bad["all_k"]["full_hr@10"] == pytest.approx(ranks.groupby("user")["rank"].min().lt(10).mean())
    paired = llm["vs_llm_ablated"]  # the difference's interval over the same resampled users
    assert paired["full_hr@5"] == 1.0 and paired["full_hr@5_low"] == paired["full_hr@5_high"] == 1.0


def test_a_retriever_list_shorter_than_the_largest_cutoff_is_refused(project):
    directory, _ = project
    params = {**PARAMS, "ranking": {**PARAMS["ranking"], "retrieve_k": 5}}  # full_ks goes to 10
    (directory / "params.yaml").write_text(yaml.safe_dump(params))
    result = run(directory, "stages.evaluate")
    assert result.returncode == 2 and "ranking.retrieve_k (5) is below the largest full-catalogue cutoff" in result.stderr
