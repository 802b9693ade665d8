"""The ingest stage from its CLI on a tiny RecBole dataset, and on the embedded ML-100k."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import tiny_recbole
import yaml
from params_base import section

from pipeline.artifacts import read_table
from pipeline.ingest.build import run_ingest
from pipeline.ingest.config import IngestParams
from pipeline.schemas import INTERACTIONS, ITEMS, SUBSET_ROWS, TOPN_CANDIDATES, USERS
from pipeline.params import load_section

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = {"interactions": INTERACTIONS, "items": ITEMS, "users": USERS, "subsets": SUBSET_ROWS,
             "topn_candidates": TOPN_CANDIDATES}


def write_tiny_recbole(root: Path) -> int:
    """30 users x 12 rows over Jan-Mar 2021, 40 items, RecBole atomic files; returns the row count."""
    return tiny_recbole.write_tiny_recbole(root, users=30, rows_per_user=12, items=40, days=89, seed=11)


def test_stage_cli_writes_all_artifacts(tmp_path):
    rows = write_tiny_recbole(tmp_path)
    section = yaml.safe_load((REPO / "params.yaml").read_text())["ingest"]
    section["source"].update(path=str(tmp_path), name="tiny")
    section["split"].update(train_months=1, valid_months=1, test_months=1)
    section["topn_negatives"] = 20
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"ingest": section}))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "stages.ingest"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"ingest: wrote data/ingest: {rows} rows" in done.stderr
    out = tmp_path / "data" / "ingest"
    tables = {name: read_table(out / f"{name}.parquet", schema) for name, schema in ARTIFACTS.items()}
    for name, schema in ARTIFACTS.items():
        assert tables[name].schema.equals(schema, check_metadata=False), name
    card = json.loads((out / "card.json").read_text())
    assert card["totals"]["rows"] == rows == tables["interactions"].num_rows
    assert sum(card["splits"][s]["rows"] for s in ("train", "valid", "test")) == rows
    assert tables["items"].num_rows == card["totals"]["items"] <= 40
    assert tables["topn_candidates"].num_rows == 21 * card["topn"]["users"]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]  # atomic writes left no temp files


def test_stage_cli_error_names_the_file(tmp_path):
    write_tiny_recbole(tmp_path)
    ingest = section("ingest", source={"path": str(tmp_path), "name": "nope"})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"ingest": ingest}))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "stages.ingest"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "nope.inter: raw file not found" in done.stderr
    assert not (tmp_path / "data" / "ingest" / "interactions.parquet").exists()


def test_embedded_ml100k_default_split_sizes():
    params = load_section("ingest", IngestParams, REPO / "params.yaml")
    out = run_ingest(params)
    splits = out.card["splits"]
    assert out.interactions.num_rows == 100_000
    assert (splits["train"]["rows"], splits["valid"]["rows"], splits["test"]["rows"]) == (77_985, 12_656, 9_359)
    assert out.users.num_rows == 943 and out.items.num_rows == 1682
    # every valid / test user, rows capped at 4 each
    assert out.card["subsets"]["valid_small"]["rows"] == 859 and out.card["subsets"]["valid_small"]["users"] == 226
    assert out.card["subsets"]["test_small"]["rows"] == 597 and out.card["subsets"]["test_small"]["users"] == 162
    assert out.card["subsets"]["test_tiny"]["rows"] == 200
