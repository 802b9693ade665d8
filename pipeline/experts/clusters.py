"""User clusters for the LoRA experts: users with train rows (or every user, experts.cluster_users),
clustered on their standardized CF user vectors (k-means or Ward agglomerative); with no fixed
count, the count with the best silhouette over a range is chosen. Centroids are kept raw (the
centroid gate's cosine uses raw vectors) and standardized."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.metrics import silhouette_score

METHODS = ("kmeans", "ward")
USER_SETS = ("train", "all")


def users_to_cluster(interactions: pd.DataFrame, which: str) -> np.ndarray:
    """The sorted user ids experts.cluster_users names: "train", the users with train rows; "all",
    every user of train, valid and test (ThinkRec's user_group.py)."""
    if which not in USER_SETS:
        raise ValueError(f"experts.cluster_users must be one of {USER_SETS}, got {which!r}")
    rows = interactions if which == "all" else interactions[interactions["split"] == "train"]
    return np.unique(rows["user"].to_numpy())


@dataclass(frozen=True)
class Clustering:
    users: np.ndarray  # (m,) clustered user ids
    labels: np.ndarray  # (m,) cluster of each user, 0..n-1, numbered by decreasing size
    raw_centroids: np.ndarray  # (n, d) mean raw vector per cluster
    centroids: np.ndarray  # (n, d) mean standardized vector per cluster
    mean: np.ndarray  # (d,) standardization
    scale: np.ndarray  # (d,)
    silhouettes: dict[int, float]  # silhouette of every count tried

    @property
    def n(self) -> int:
        return len(self.raw_centroids)

    def standardize(self, vectors: np.ndarray) -> np.ndarray:
        return (vectors - self.mean) / self.scale


def cluster_users(
    users: np.ndarray, vectors: np.ndarray, method: str, n: int | None, candidates: range, seed: int
) -> Clustering:
    """Cluster `users` (their raw CF vectors (m, d)) into `n` groups, or into the count in
    `candidates` with the highest silhouette when `n` is None."""
    if method not in METHODS:
        raise ValueError(f"experts.method must be one of {METHODS}, got {method!r}")
    if len(users) != len(vectors):
        raise ValueError(f"{len(users)} users but {len(vectors)} vectors")
    counts = [n] if n is not None else [k for k in candidates if k < len(users)]
    if not counts or counts[0] < 2 or counts[0] >= len(users):
        raise ValueError(f"need 2 <= clusters < users ({len(users)}); got {counts[:1] or 'no candidate'}")
    mean = vectors.mean(axis=0)
    scale = vectors.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    standard = ((vectors - mean) / scale).astype(np.float64)
    fits = {k: _fit(standard, method, k, seed) for k in counts}
    silhouettes = {k: float(silhouette_score(standard, labels, random_state=seed)) for k, labels in fits.items()}
    best = max(silhouettes, key=lambda k: (silhouettes[k], -k))
    labels = _by_size(fits[best])
    raw = np.stack([vectors[labels == c].mean(axis=0) for c in range(best)]).astype(np.float32)
    centroids = np.stack([standard[labels == c].mean(axis=0) for c in range(best)]).astype(np.float32)
    return Clustering(np.asarray(users), labels, raw, centroids, mean.astype(np.float32),
                      scale.astype(np.float32), silhouettes)


def _fit(standard: np.ndarray, method: str, k: int, seed: int) -> np.ndarray:
    if method == "kmeans":
        return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(standard)
    return AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(standard)


def _by_size(labels: np.ndarray) -> np.ndarray:
    """Relabel so cluster 0 is the largest (ties by old label): stable names across reruns."""
    sizes = np.bincount(labels)
    order = sorted(range(len(sizes)), key=lambda c: (-sizes[c], c))
    mapping = np.empty(len(sizes), dtype=np.int64)
    mapping[order] = np.arange(len(sizes))
    return mapping[labels]
