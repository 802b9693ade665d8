"""Stage `clusters`: users clustered on their standardized CF user vectors
(data/cf_selected/user_vectors.parquet: the CF model cf_select chose), one LoRA expert per cluster
later. experts.cluster_users says who: the users with train rows (train) or every user of train,
valid and test (all, as ThinkRec's user_group.py); either way each expert trains on its cluster's
train rows, so every cluster must hold a user with train rows.

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
from pipeline.experts.clusters import cluster_users, users_to_cluster
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
    warm = users_to_cluster(interactions, "train")
    users = users_to_cluster(interactions, params.cluster_users)
    if params.n is not None and params.n > len(params.slots):
        raise BadParams(f"params.yaml experts.n = {params.n} but only {len(params.slots)} experts.slots (dvc.yaml "
                         "generates one expert stage per slot): add slots")
    clustering = cluster_users(users, table[users], params.method, params.n, range(2, len(params.slots) + 1),
                               params.seed)
    sizes = np.bincount(clustering.labels, minlength=clustering.n).tolist()
    # users with train rows per cluster: what each expert trains on (equal to sizes when cluster_users is train)
    trained_on = np.bincount(clustering.labels[np.isin(clustering.users, warm)], minlength=clustering.n).tolist()
    empty = [k for k, count in enumerate(trained_on) if count == 0]
    if empty:
        raise BadParams(f"params.yaml experts.cluster_users = {params.cluster_users}: cluster(s) {empty} of "
                        f"{clustering.n} hold no user with train rows, so their experts would have nothing to train "
                        "on: lower experts.n or cluster users with train rows only (experts.cluster_users: train)")
    description = {
        "n": clustering.n, "method": params.method, "cf_model": cf_model, "sizes": sizes,
        "silhouettes": {str(k): v for k, v in clustering.silhouettes.items()},
        "raw_centroids": clustering.raw_centroids.tolist(), "centroids": clustering.centroids.tolist(),
        "mean": clustering.mean.tolist(), "scale": clustering.scale.tolist(),
    }
    all_users = users_to_cluster(interactions, "all")
    # the clusters and their metrics together or neither
    with atomic_directory(CLUSTERS_DIR) as tmp, atomic_paths(layout.metrics("clusters")) as (metrics_tmp,):
        frame = pd.DataFrame({"user": clustering.users.astype(np.int32), "cluster": clustering.labels.astype(np.int32)})
        write_frame(frame, tmp / "user_clusters.parquet", schemas.USER_CLUSTERS)
        write_json(description, tmp / "clustering.json")
        write_json(stamped({"n": clustering.n, "sizes": sizes, "silhouette": clustering.silhouettes[clustering.n],
                            "silhouettes": description["silhouettes"], "cluster_users": params.cluster_users,
                            "clustered_users": int(len(users)), "sizes_with_train_rows": trained_on,
                            "clustered_without_train_rows": int(len(np.setdiff1d(users, warm))),
                            "cold_users": int(len(np.setdiff1d(all_users, users)))}, "clusters"), metrics_tmp)
    who = "users with train rows" if params.cluster_users == "train" else \
        f"users of train, valid and test ({len(np.setdiff1d(users, warm))} without train rows)"
    print(f"clusters: {clustering.n} clusters of {len(users)} {who} ({params.method} on {cf_model} "
          f"vectors), sizes {sizes}, silhouette {clustering.silhouettes[clustering.n]:.3f}")


if __name__ == "__main__":
    run_stage(main)
