"""Tiny ingest artifacts (and CF predictions) written by tests, in the declared schemas."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from params_base import section

from pipeline import layout
from pipeline.artifacts import write_frame
from pipeline.cf.selected import PREDICTIONS as SELECTED_PREDICTIONS
from pipeline.cf.selection import write_selection
from pipeline.schemas import INTERACTIONS, ITEMS, PREDICTIONS, SUBSET_ROWS

GENRES = ["Comedy", "Drama", "Action", "Horror", "Romance"]


def tiny_items(n_items: int = 12) -> pd.DataFrame:
    return pd.DataFrame({
        "item": np.arange(n_items, dtype=np.int32),
        "raw_id": [str(i + 1) for i in range(n_items)],
        "title": [f"Film Number {i}" for i in range(n_items)],
        "categories": [[GENRES[i % 5], GENRES[(i + 2) % 5]] for i in range(n_items)],
        "description": [""] * n_items,
        "extra": ["1995"] * n_items,
    })


def tiny_interactions(n_users: int = 4, per_user: int = 14, n_items: int = 12, reviews: bool = False) -> pd.DataFrame:
    """Each user rates `per_user` items in time order: the first 10 train, then valid, then test."""
    rng = np.random.default_rng(0)
    records = []
    for user in range(n_users):
        items = rng.permutation(n_items)[:per_user] if per_user <= n_items else rng.integers(0, n_items, per_user)
        ratings = rng.integers(1, 6, per_user)
        for k, (item, rating) in enumerate(zip(items, ratings)):
            split = "train" if k < per_user - 4 else ("valid" if k < per_user - 2 else "test")
            records.append((user, int(item), float(rating), k, split))
    frame = pd.DataFrame(records, columns=["user", "item", "rating", "k", "split"])
    frame = frame.sort_values(["k", "user"]).reset_index(drop=True)
    frame["row"] = np.arange(len(frame), dtype=np.int64)
    frame["timestamp"] = 1_000_000 + frame["row"] * 60
    frame["label"] = (frame["rating"] >= 4).astype(np.int8)
    histories, labels = [], []
    for r in frame.itertuples():
        earlier = frame[(frame["user"] == r.user) & (frame["k"] < r.k)]
        histories.append(earlier["item"].astype(np.int32).tolist())
        labels.append(earlier["label"].astype(np.int8).tolist())
    frame["history_items"], frame["history_labels"] = histories, labels
    frame["review"] = [f"I watched film {i} and it was fine, really." for i in frame["item"]] if reviews else None
    return frame.drop(columns="k")


def write_tiny_ingest(root: Path, reviews: bool = False, n_users: int = 4, per_user: int = 14) -> pd.DataFrame:
    """Write data/ingest/{items,interactions,subsets}.parquet under `root`; return interactions."""
    items = tiny_items()
    interactions = tiny_interactions(n_users, per_user, len(items), reviews)
    test_rows = interactions.loc[interactions["split"] == "test", "row"]
    subsets = pd.DataFrame({"subset": "test_tiny", "row": test_rows.astype(np.int64)})
    write_frame(items, root / "data/ingest/items.parquet", ITEMS)
    write_frame(interactions, root / "data/ingest/interactions.parquet", INTERACTIONS)
    write_frame(subsets, root / "data/ingest/subsets.parquet", SUBSET_ROWS)
    return interactions


def write_predictions(root: Path, interactions: pd.DataFrame, wrong_rows: set[int], model: str = "mf") -> Path:
    """CF logits that are right for every row except `wrong_rows` (sign of the logit = verdict)."""
    right = np.where(interactions["label"] == 1, 2.0, -2.0)
    flip = interactions["row"].isin(wrong_rows).to_numpy()
    scores = np.where(flip, -right, right).astype(np.float32)
    frame = interactions[["row", "user", "item"]].assign(score=scores)
    return write_frame(frame, root / f"data/predictions/{model}.parquet", PREDICTIONS)


def write_cf_selection(root: Path, model: str = "mf") -> Path:
    """data/cf_selected/ as the cf_select stage writes it for `model`, from whichever of its
    data/cf/<model>/ files and predictions the test wrote (the later stages read only the selection)."""
    cf_dir = root / layout.cf_dir(model)
    files = {path.name: path for path in sorted(cf_dir.iterdir()) if path.is_file()} if cf_dir.is_dir() else {}
    if (root / layout.predictions(model)).exists():
        files[SELECTED_PREDICTIONS] = root / layout.predictions(model)
    return write_selection(model, files, root / layout.CF_SELECTED_DIR)


def write_params(root: Path, **sections) -> Path:
    """params.yaml under `root` with the named sections, each the repo's params.yaml section with
    the given keys laid over it, and an `llm` section whose cache lives under `root`."""
    import yaml

    sections.setdefault("llm", {"backend": "local", "model": "unused-in-tests"})
    sections["llm"].setdefault("cache_path", str(root / ".llm_cache/responses.sqlite"))
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump({name: section(name, **keys) for name, keys in sections.items()}))
    return path
