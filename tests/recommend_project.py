"""A tiny project `thinkrec recommend` runs on: the rec_tiny artifacts + 6 items nobody rated + a
7th user without interactions + an untrained collm in data/rec/collm, and the repository's
dvc.yaml (for "run `dvc repro <stage>`" messages); collm's training metrics and the CF log carry
the stamp of this project's ingest and params, as the stages write them (pipeline/provenance.py)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

import rec_tiny
from params_base import section
from pipeline import schemas
from pipeline.artifacts import read_frame, write_frame, write_json
from pipeline.cli.stage_of import declared_params
from pipeline.provenance import ingest_fingerprint, stamp
from pipeline.rec.model import LoraParams, build_rec_model, save_rec_model
from tiny_ingest import write_cf_selection

NEW_TITLES = ["Story Alpha Movie", "Story Bravo Movie", "Story Charlie Movie", "Story Delta Movie",
              "Story Echo Movie", "Story Golf Movie"]
REPO = Path(__file__).resolve().parents[1]


def write_recommend_project(root: Path) -> Path:
    torch.set_num_threads(1)
    rec_tiny.write_tiny_model(root / "tiny")
    rec_tiny.write_tiny_artifacts(root)
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    items = read_frame(root / "data/ingest/items.parquet", schemas.ITEMS)
    start = len(items)
    new = pd.DataFrame({"item": range(start, start + len(NEW_TITLES)), "raw_id": [f"i{start + i}" for i in range(6)],
                        "title": NEW_TITLES, "categories": [["drama"]] * 6, "description": "", "extra": ""})
    write_frame(pd.concat([items, new], ignore_index=True), root / "data/ingest/items.parquet", schemas.ITEMS)
    vectors = np.random.default_rng(1).normal(size=(len(NEW_TITLES), rec_tiny.CF_DIM)).astype(np.float32)
    old = read_frame(root / "data/cf/mf/item_vectors.parquet", schemas.ITEM_VECTORS)
    write_frame(pd.concat([old, pd.DataFrame({"item": new["item"], "vector": list(vectors)})], ignore_index=True),
                root / "data/cf/mf/item_vectors.parquet", schemas.ITEM_VECTORS)
    write_cf_selection(root, "mf")  # as cf_select would, after cf@mf
    write_frame(pd.DataFrame({"user": range(7), "raw_id": [f"u{u}" for u in range(7)]}),
                root / "data/ingest/users.parquet", schemas.USERS)
    params = rec_tiny.tiny_params(root / "tiny")
    params["recommend"] = {"model": "collm", "candidates": 4, "k": 3, "explain": 1, "threads": 1}
    params["explain"] = section("explain", models=["collm"], rows=4, max_new_tokens=6, min_new_tokens=2,
                                batch_size=2, dtype="float32", threads=1)
    rec_tiny.write_params(root, params)
    torch.manual_seed(0)
    lora = LoraParams(**section("rec.lora", layers=None, r=2, alpha=4))
    model = build_rec_model(str(root / "tiny"), lora, cf_dim=rec_tiny.CF_DIM, projector_expansion=2)
    save_rec_model(model, root / "data/rec/collm")
    stamp_as_the_stage(root, "metrics/collm_train.json", "collm")
    stamp_as_the_stage(root, "data/cf_selected/train_log.json", "cf@mf")
    return root


def stamp_as_the_stage(root: Path, relative: str, stage: str, ingest: str | None = None) -> None:
    """Add the provenance stamp dvc.yaml's `stage` writes to the JSON file `relative` (created when
    absent): `ingest` (default: the project's data/ingest) and the params it declares."""
    path = root / relative
    data = json.loads(path.read_text()) if path.exists() else {}
    params = yaml.safe_load((root / "params.yaml").read_text())
    keys = declared_params(stage, root / "dvc.yaml", root / "params.yaml")
    write_json({**data, **stamp(ingest or ingest_fingerprint(root / "data/ingest"), keys, params)}, path)
