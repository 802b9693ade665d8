"""Tiny ingest artifacts for CF/evaluate tests, written in the schemas of pipeline/schemas.py.

Labels come from hidden user/item factors, so a CF model can learn them; splits are by time.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.artifacts import write_frame
from pipeline.schemas import INTERACTIONS, ITEMS, SUBSET_ROWS, TOPN_CANDIDATES, USERS


def synthetic_interactions(n_users: int = 40, n_items: int = 50, per_user: int = 20, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    taste = rng.normal(size=(n_users, 4))
    traits = rng.normal(size=(n_items, 4))
    records = []
    for user in range(n_users):
        for item in rng.choice(n_items, size=per_user, replace=False):
            label = int(taste[user] @ traits[item] + 0.3 * rng.normal() > 0)
            records.append((user, int(item), label, int(rng.integers(0, 1_000_000))))
    frame = pd.DataFrame(records, columns=["user", "item", "label", "timestamp"])
    frame = frame.sort_values(["timestamp", "user", "item"], ignore_index=True)
    frame["row"] = np.arange(len(frame), dtype=np.int64)
    frame["rating"] = np.where(frame["label"] == 1, 5.0, 2.0)
    cut_valid, cut_test = np.quantile(frame["timestamp"], [0.7, 0.85])
    frame["split"] = np.select(
        [frame["timestamp"] < cut_valid, frame["timestamp"] < cut_test], ["train", "valid"], "test"
    )
    histories, history_labels = [], []
    seen: dict[int, list[tuple[int, int]]] = {}
    for user, item, label in zip(frame["user"], frame["item"], frame["label"]):
        earlier = seen.setdefault(user, [])
        histories.append([i for i, _ in earlier][-25:])
        history_labels.append([lab for _, lab in earlier][-25:])
        earlier.append((item, label))
    frame["history_items"] = histories
    frame["history_labels"] = history_labels
    frame["review"] = None
    return frame


def topn_candidates(interactions: pd.DataFrame, n_items: int, negatives: int, seed: int = 0) -> pd.DataFrame:
    """Per test user: the last test item as the positive + `negatives` items never interacted with."""
    rng = np.random.default_rng(seed)
    records = []
    test = interactions[interactions["split"] == "test"]
    for user, rows in test.groupby("user"):
        last = rows.sort_values("row").iloc[-1]
        positive, row = int(last["item"]), int(last["row"])
        unseen = np.setdiff1d(np.arange(n_items), interactions.loc[interactions["user"] == user, "item"])
        records.append((user, positive, 1, row))
        records += [(user, int(item), 0, row) for item in rng.choice(unseen, size=negatives, replace=False)]
    return pd.DataFrame(records, columns=["user", "item", "positive", "row"])


def write_synthetic_ingest(root: Path, n_users: int = 40, n_items: int = 50, seed: int = 0) -> pd.DataFrame:
    """Write data/ingest/*.parquet under `root`; return the interactions frame."""
    ingest = root / "data" / "ingest"
    frame = synthetic_interactions(n_users, n_items, seed=seed)
    write_frame(frame, ingest / "interactions.parquet", INTERACTIONS)
    items = pd.DataFrame({
        "item": np.arange(n_items, dtype=np.int32), "raw_id": [f"i{i}" for i in range(n_items)],
        "title": [f"Item {i}" for i in range(n_items)], "categories": [["Drama"]] * n_items,
        "description": "", "extra": "",
    })
    write_frame(items, ingest / "items.parquet", ITEMS)
    users = pd.DataFrame({"user": np.arange(n_users, dtype=np.int32), "raw_id": [f"u{u}" for u in range(n_users)]})
    write_frame(users, ingest / "users.parquet", USERS)
    rng = np.random.default_rng(seed)
    subsets = []
    for name, split, fraction in (("valid_small", "valid", 0.5), ("test_small", "test", 0.5), ("test_tiny", "test", 0.2)):
        rows = frame.loc[frame["split"] == split, "row"].to_numpy()
        chosen = np.sort(rng.choice(rows, size=max(1, int(len(rows) * fraction)), replace=False))
        subsets.append(pd.DataFrame({"subset": name, "row": chosen}))
    write_frame(pd.concat(subsets, ignore_index=True), ingest / "subsets.parquet", SUBSET_ROWS)
    write_frame(topn_candidates(frame, n_items, negatives=9, seed=seed), ingest / "topn_candidates.parquet", TOPN_CANDIDATES)
    return frame
