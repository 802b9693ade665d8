"""Gates: a user's CF vector -> weights over the E = n + 1 experts (n cluster experts, then the
global one, index n).

"centroid" is training-free: w = softmax(cos(e_u, b_k) / temperature) over the raw cluster
centroids b_k; one expert alone when max w > 0.5 + 0.6 / n, the global expert when the entropy of
w is at least 0.95 ln n, else the cluster experts weighted by w.
"trained" is a small network on the standardized vector, trained to minimise the fused model's BCE
on validation rows (pipeline/experts/gate_training.py).
Rows of users not clustered (experts.cluster_users: train leaves out the users without train rows;
all clusters every user) go to the global expert unless `cold` is "gate".
The gate stage builds and trains gates (pipeline/experts); the recommender reads the saved one
(`read_gate`) to route its prompts.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pipeline import layout
from pipeline.artifacts import expect_content, load_torch, read_json_object

KINDS = ("centroid", "trained")
COLD = ("global", "gate")


def centroid_weights(vectors: np.ndarray, raw_centroids: np.ndarray, temperature: float) -> np.ndarray:
    """(m, n + 1) expert weights of raw CF vectors (m, d) by the training-free rule."""
    n = len(raw_centroids)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    centres = raw_centroids / np.maximum(np.linalg.norm(raw_centroids, axis=1, keepdims=True), 1e-12)
    logits = unit @ centres.T / temperature
    soft = np.exp(logits - logits.max(axis=1, keepdims=True))
    soft /= soft.sum(axis=1, keepdims=True)
    entropy = -(soft * np.log(np.maximum(soft, 1e-30))).sum(axis=1)
    weights = np.zeros((len(vectors), n + 1), dtype=np.float64)
    single = soft.max(axis=1) > 0.5 + 0.6 / n
    uniform = ~single & (entropy >= 0.95 * math.log(n))
    mixed = ~single & ~uniform
    weights[np.flatnonzero(single), soft[single].argmax(axis=1)] = 1.0
    weights[uniform, n] = 1.0
    weights[mixed, :n] = soft[mixed]
    return weights.astype(np.float32)


class TrainedGate(nn.Module):
    """Standardized CF vector (d) -> softmax weights over `experts`."""

    def __init__(self, dim: int, hidden: int, experts: int):
        super().__init__()
        self.dim, self.hidden, self.experts = dim, hidden, experts
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, experts))

    def forward(self, standardized: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(standardized), dim=-1)

    def config(self) -> dict:
        return {"dim": self.dim, "hidden": self.hidden, "experts": self.experts}


def global_only(rows: int, experts: int) -> np.ndarray:
    weights = np.zeros((rows, experts), dtype=np.float32)
    weights[:, experts - 1] = 1.0
    return weights


def route_kinds(weights: np.ndarray) -> dict[str, int]:
    """How many rows go to one cluster expert, to the global one, or to a mixture."""
    one = np.isclose(weights.max(axis=1), 1.0)
    to_global = one & (weights.argmax(axis=1) == weights.shape[1] - 1)
    return {"single_cluster": int((one & ~to_global).sum()), "global": int(to_global.sum()), "mixture": int((~one).sum())}


class Gate:
    """A fitted gate over n cluster experts + the global one: `weights(vectors, warm)`."""

    def __init__(self, kind: str, raw_centroids: np.ndarray, mean: np.ndarray, scale: np.ndarray,
                 temperature: float, cold: str, network: TrainedGate | None = None):
        if kind not in KINDS:
            raise ValueError(f"gate.kind must be one of {KINDS}, got {kind!r}")
        if cold not in COLD:
            raise ValueError(f"experts.cold must be one of {COLD}, got {cold!r}")
        if kind == "trained" and network is None:
            raise ValueError("a trained gate needs its network")
        self.kind, self.raw_centroids, self.mean, self.scale = kind, raw_centroids, mean, scale
        self.temperature, self.cold, self.network = temperature, cold, network

    @property
    def experts(self) -> int:
        return len(self.raw_centroids) + 1

    def standardize(self, vectors: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(((vectors - self.mean) / self.scale).astype(np.float32))

    def weights(self, vectors: np.ndarray, warm: np.ndarray) -> np.ndarray:
        """(m, E) weights of raw CF vectors (m, d); rows of users not clustered (`warm` False)
        go to the global expert when cold == "global"."""
        if self.kind == "centroid":
            weights = centroid_weights(vectors, self.raw_centroids, self.temperature)
        else:
            with torch.no_grad():
                weights = self.network(self.standardize(vectors)).numpy().astype(np.float32)
        if self.cold == "global":
            weights[~np.asarray(warm, dtype=bool)] = global_only(1, self.experts)[0]
        return weights

    def state(self) -> dict:
        """JSON-ready description (the trained network's weights are saved separately)."""
        return {"kind": self.kind, "experts": self.experts, "temperature": self.temperature, "cold": self.cold,
                "raw_centroids": self.raw_centroids.tolist(), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "network": self.network.config() if self.network is not None else None}

    @classmethod
    def from_state(cls, state: dict, network_state: dict | None = None) -> "Gate":
        network = None
        if state["network"] is not None:
            if network_state is None:
                raise ValueError("a trained gate's description needs its saved network weights")
            network = TrainedGate(**state["network"])
            network.load_state_dict(network_state)
            network.eval()
        return cls(state["kind"], np.asarray(state["raw_centroids"], np.float32), np.asarray(state["mean"], np.float32),
                   np.asarray(state["scale"], np.float32), state["temperature"], state["cold"], network)


def read_gate(directory: Path = layout.GATE_DIR) -> Gate:
    """The gate the gate stage saved in `directory`: gate.json, and gate.pt for a trained one. A
    damaged or foreign file is an UnreadableArtifact naming it."""
    described, network = Path(directory) / "gate.json", Path(directory) / "gate.pt"
    state = read_json_object(described)
    network_state = load_torch(network) if network.exists() else None
    # both files are the gate stage's: a key gate.json lacks, or weights of other shapes, name the directory
    with expect_content(Path(directory), "a gate (gate.json, and gate.pt of the network it describes)"):
        return Gate.from_state(state, network_state)
