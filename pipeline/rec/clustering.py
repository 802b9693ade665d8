"""The clusters stage's artifacts as a fused-experts model reads them: how many cluster experts
there are (one expert stage per cluster in use) and which users are clustered. Torch-free, so an
expert stage past the cluster count writes its marker without loading a model."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline import layout, schemas
from pipeline.artifacts import read_frame, read_json_object
from pipeline.errors import MissingInput


def read_clustering(directory: Path = layout.CLUSTERS_DIR) -> tuple[dict, pd.DataFrame]:
    """(clustering.json, user_clusters frame) written by the clusters stage into `directory`."""
    path = Path(directory) / "clustering.json"
    if not path.exists():
        raise MissingInput(f"{path}: missing; run `dvc repro clusters`")
    return read_json_object(path), read_frame(Path(directory) / "user_clusters.parquet", schemas.USER_CLUSTERS)


def used_expert_dirs(clustering: dict) -> list[Path]:
    """The expert stages' directories of the clusters in use (slots past the count hold a marker)."""
    return [layout.expert_dir(k) for k in range(clustering["n"])]
