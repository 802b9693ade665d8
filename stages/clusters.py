"""Stage `clusters`: users with train rows clustered on their standardized CF user vectors
(data/cf_selected/user_vectors.parquet: the CF model cf_select chose), one LoRA expert per cluster later.

Usage: python -m stages.clusters
Writes data/experts/clusters/{user_clusters.parquet, clustering.json} and metrics/clusters.json.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline import layout, schemas
from pipeline.artifacts import atomic_directory, atomic_paths, read_frame, write_frame, write_json
from pipeline.cf.selected import selected_cf_model
from pipeline.layout import CLUSTERS_DIR
from pipeline.experts.clusters import cluster_users
from pipeline.experts.params import ExpertsParams
from pipeline.params import load_section
from pipeline.rec.examples import dense_vectors
from pipeline.errors import BadParams, run_stage
from stages.stamp import stamped


def main() -> None:
    params = load_section("experts", ExpertsParams)
    cf_model = selected_cf_model()
    vectors_path = str(layout.CF_SELECTED_DIR / "user_vectors.parquet")
    table = dense_vectors(read_frame(vectors_path, schemas.USER_VECTORS), "user", vectors_path)
    interactions = read_frame(layout.INTERACTIONS, schemas.INTERACTIONS)
    warm = np.unique(interactions.loc[interactions["split"] == "train", "user"].to_numpy())
    if params.n is not None and params.n > len(params.slots):
        raise BadParams(f"params.yaml experts.n = {params.n} but only {len(params.slots)} experts.slots (dvc.yaml "
                         "generates one expert stage per slot): add slots")
    clustering = cluster_users(warm, table[warm], params.method, params.n, range(2, len(params.slots) + 1), params.seed)
    sizes = np.bincount(clustering.labels, minlength=clustering.n).tolist()
    description = {
        "n": clustering.n, "method": params.method, "cf_model": cf_model, "sizes": sizes,
        "silhouettes": {str(k): v for k, v in clustering.silhouettes.items()},
        "raw_centroids": clustering.raw_centroids.tolist(), "centroids": clustering.centroids.tolist(),
        "mean": clustering.mean.tolist(), "scale": clustering.scale.tolist(),
    }
    all_users = np.unique(interactions["user"].to_numpy())
    # the clusters and their metrics together or neither
    with atomic_directory(CLUSTERS_DIR) as tmp, atomic_paths(layout.metrics("clusters")) as (metrics_tmp,):
        frame = pd.DataFrame({"user": clustering.users.astype(np.int32), "cluster": clustering.labels.astype(np.int32)})
        write_frame(frame, tmp / "user_clusters.parquet", schemas.USER_CLUSTERS)
        write_json(description, tmp / "clustering.json")
        write_json(stamped({"n": clustering.n, "sizes": sizes, "silhouette": clustering.silhouettes[clustering.n],
                            "silhouettes": description["silhouettes"], "clustered_users": int(len(warm)),
                            "cold_users": int(len(np.setdiff1d(all_users, warm)))}, "clusters"), metrics_tmp)
    print(f"clusters: {clustering.n} clusters of {len(warm)} users with train rows ({params.method} on {cf_model} "
          f"vectors), sizes {sizes}, silhouette {clustering.silhouettes[clustering.n]:.3f}")


if __name__ == "__main__":
    run_stage(main)
