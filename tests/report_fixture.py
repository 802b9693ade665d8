"""A tiny project directory with every input `thinkrec report` reads: two models' metrics (with
intervals, warm/cold, paired comparisons, per-cluster results and top-N fields), a top-N-only
model's metrics (as RDRec's: no pointwise rows), the comparisons the verdict reads, ROC points,
predictions for per-user AUC, training logs, LLM usage and explanations. Every file is laid out and
stamped as the stages write them (headline + detail files; the ingest fingerprint, the params)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

import tiny_ingest
from pipeline import schemas
from pipeline.artifacts import write_frame
from pipeline.metrics.report import split_report
from pipeline.provenance import ingest_fingerprint, stamp

MODELS = {"mf": 0.812, "collm": 0.655}  # name -> AUC written to its metrics file
PARAMS = {"evaluate": {"subset": "train", "headline": ["auc", "uauc", "topn_hr@1", "topn_hr@3"]}}
TOPN_HR = {"mf": (0.30, 0.55), "collm": (0.20, 0.40), "rdrec": (0.45, 0.70)}  # name -> (HR@1, HR@3)
TOPN_ONLY = "rdrec"  # top-N fields only, as metrics/rdrec.json
# the paired differences the verdict reads (collm's and rdrec's vs_best_cf: mf; rdrec's ablation vs_popularity)
COLLM_VS_MF = {"auc": -0.157, "auc_low": -0.205, "auc_high": -0.105, "uauc": -0.04, "uauc_low": -0.12,
               "uauc_high": 0.03, "topn_hr@1": -0.1, "topn_hr@1_low": -0.25, "topn_hr@1_high": 0.05}
RDREC_VS = {"mf": {"topn_hr@1": 0.15, "topn_hr@1_low": 0.01, "topn_hr@1_high": 0.29},
            "popularity": {"topn_hr@1": -0.05, "topn_hr@1_low": -0.2, "topn_hr@1_high": 0.1}}


def _topn(hr1: float, hr3: float) -> dict:
    """Top-level top-N fields as evaluate writes them (20 users; HR@1 and HR@3 with intervals;
    NDCG@5 with one; HR@2 only in all_k, without)."""
    fields = {"topn_users": 20, "all_k": {"topn_hr@2": (hr1 + hr3) / 2}}
    for name, value in (("topn_hr@1", hr1), ("topn_hr@3", hr3), ("topn_ndcg@5", (hr1 + hr3) / 2)):
        fields.update({name: value, f"{name}_low": max(0.0, value - 0.15), f"{name}_high": value + 0.15})
    return fields


def _metrics(auc: float) -> dict:
    group = {"auc": auc, "auc_low": auc - 0.05, "auc_high": auc + 0.05, "uauc": auc - 0.1,
             "uauc_low": auc - 0.15, "uauc_high": auc - 0.05, "n_users": 4, "n_rows": 20}
    return {**group, "n_users": 8, "n_rows": 40, "warm": {**group, "auc": auc + 0.01},
            "cold": {**group, "auc": auc - 0.02},
            "clusters": {"0": {"auc": auc + 0.03, "uauc": auc, "users": 5, "rows": 25},
                         "1": {"auc": auc - 0.04, "uauc": auc - 0.2, "users": 3, "rows": 15}}}


def write_evaluation(root: Path, name: str, report: dict) -> None:
    """metrics/<name>.json and metrics/detail/<name>.json of `report`, as the evaluate stage writes them."""
    top, detail = split_report(report, PARAMS["evaluate"]["headline"])
    fingerprint = ingest_fingerprint(root / "data/ingest")
    (root / "metrics/detail").mkdir(parents=True, exist_ok=True)
    (root / f"metrics/{name}.json").write_text(json.dumps({**top, **stamp(fingerprint, ["evaluate"], PARAMS, True)}))
    (root / f"metrics/detail/{name}.json").write_text(json.dumps({**detail, **stamp(fingerprint, ["evaluate"], PARAMS)}))


def stamped(root: Path, data: dict, keys: list[str]) -> str:
    """`data` with the stamp of a stage declaring `keys`, as JSON."""
    return json.dumps({**data, **stamp(ingest_fingerprint(root / "data/ingest"), keys, PARAMS)})


def write_report_project(root: Path) -> Path:
    interactions = tiny_ingest.write_tiny_ingest(root, n_users=6, per_user=12)
    train_rows = set(interactions.loc[interactions["split"] == "train", "row"])
    tiny_ingest.write_predictions(root, interactions, set(), "mf")
    tiny_ingest.write_predictions(root, interactions, set(sorted(train_rows)[::3]), "collm")
    (root / "metrics").mkdir()
    (root / "plots/roc").mkdir(parents=True)
    for name, auc in MODELS.items():
        metrics = {**_metrics(auc), **_topn(*TOPN_HR[name])}
        if name == "collm":
            metrics["vs_mf"] = {"auc": auc - 0.812, "auc_low": auc - 0.86, "auc_high": auc - 0.76,
                                "clusters": {"0": {"auc": -0.1, "auc_low": -0.2, "auc_high": 0.0}}}
            metrics["vs_best_cf"] = {"model": "mf", **COLLM_VS_MF}
        write_evaluation(root, name, metrics)
        points = [{"fpr": x / 10, "tpr": min(1.0, (x / 10) ** (1 - auc + 0.3))} for x in range(11)]
        (root / f"plots/roc/{name}.json").write_text(json.dumps({"roc": points}))
    rdrec = {"n_rows": 0, "n_users": 0, "n_uauc_users": 0, "positive_rate": None, **_topn(*TOPN_HR[TOPN_ONLY]),
             "vs_best_cf": {"model": "mf", **RDREC_VS["mf"]}, "vs_popularity": RDREC_VS["popularity"]}
    write_evaluation(root, TOPN_ONLY, rdrec)
    (root / "metrics/keywords.json").write_text(stamped(root, {"llm": {
        "calls": 1291, "cache_hits": 9, "hit_rate": 0.0069, "tokens_in": 212467, "tokens_out": 30033,
        "wall_seconds": 199.3}, "stage_seconds": 206.2}, ["keywords", "llm"]))
    for variant in ("collm", "tallrec"):
        steps = [{"step": s, "loss": 1.0 / s + 0.1 * (variant == "tallrec")} for s in range(1, 21)]
        (root / f"data/rec/{variant}").mkdir(parents=True)
        (root / f"data/rec/{variant}/train_log.json").write_text(json.dumps({"steps": steps}))
        (root / f"metrics/{variant}_train.json").write_text(stamped(root, {"train_rows": 20}, ["rec.lora"]))
    (root / "data/cf/mf").mkdir(parents=True)
    (root / "data/cf/mf/train_log.json").write_text(stamped(root, {"epochs": [
        {"epoch": e, "loss": 0.7 - 0.02 * e, "valid_auc": 0.6 + 0.01 * e} for e in range(1, 9)]}, ["cf.train", "cf.mf"]))
    write_frame(pd.DataFrame({
        "row": [3, 3, 5, 5], "model": ["collm", "tallrec"] * 2,
        "explanation": ["Yes. Likes comedies.", "Yes.", "No. Too dark.", "No."],
        "gold": ["Yes. The user enjoys comedy films.", "Yes. The user enjoys comedy films.",
                      "No. The user avoids horror.", "No. The user avoids horror."],
        "bleu4": 0.1, "rouge_l": 0.2, "meteor": 0.3, "bertscore_f1": 0.4,
    }), root / "data/explanations/explanations.parquet", schemas.EXPLANATIONS)
    (root / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    return root
