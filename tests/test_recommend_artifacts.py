"""`thinkrec recommend` on the pipeline's real artifacts (SmolLM2, the trained thinkrec variant,
ML-100k), when `make repro` has produced them here: five unseen items with sorted scores and a
reason for the first, through the installed console script."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline import schemas
from pipeline.artifacts import read_frame

REPO = Path(__file__).resolve().parents[1]
NEEDED = [REPO / "data/rec/thinkrec/model.json", REPO / "data/ingest/users.parquet",
          REPO / "data/models/smollm2-135m-instruct"]


@pytest.mark.slow
@pytest.mark.skipif(not all(p.exists() for p in NEEDED), reason="needs the artifacts of `make repro`")
def test_recommend_on_the_pipeline_artifacts():
    script = shutil.which("thinkrec", path=str(Path(os.sys.executable).parent)) or "thinkrec"
    done = subprocess.run([script, "recommend", "--user", "196", "-k", "5", "--explain", "1", "--json"],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout)
    recs = answer["recommendations"]
    assert len(recs) == 5 and answer["model"] == "thinkrec"
    items = read_frame(REPO / "data/ingest/items.parquet", schemas.ITEMS)
    interactions = read_frame(REPO / "data/ingest/interactions.parquet", schemas.INTERACTIONS)
    users = read_frame(REPO / "data/ingest/users.parquet", schemas.USERS)
    user = int(users.loc[users["raw_id"] == "196", "user"].iloc[0])
    seen = set(items.loc[items["item"].isin(interactions.loc[interactions["user"] == user, "item"]), "raw_id"])
    assert not seen & {r["item"] for r in recs} and len({r["item"] for r in recs}) == 5
    assert [r["score"] for r in recs] == sorted((r["score"] for r in recs), reverse=True)
    assert all(1 <= r["cf_rank"] <= answer["candidates"] for r in recs)
    assert recs[0]["reasoning"].strip() and "reasoning" not in recs[1]
