"""What the expert stages (clusters, expert@<slot>, gate, thinkrec_experts) share: the fused model's
registry entry, the variant it is scored in and the one each expert trains in, and a fresh gate over
the clusters (the gate stage's starting point). The fused model itself loads by name:
pipeline/rec/recommender.py."""
from __future__ import annotations

import numpy as np

from pipeline import registry
from pipeline.experts.params import ExpertsParams, GateParams

NAME = "thinkrec_experts"  # the registry entry of the fused model
BASE_VARIANT = registry.get_model(NAME).starts_from  # the stage-2 model the experts are scored in (its projector kept)
STAGE1_VARIANT = registry.get_model(BASE_VARIANT).starts_from  # the stage-1 LoRA it froze: every expert's start


def expert_start(prompt: str) -> str:
    """The variant an expert trains in, by experts.train.prompt: "cf" the stage-2 model (its
    projector frozen, CF-slot prompts), "text" its stage-1 variant (the same LoRA, text prompts)."""
    starts = {"cf": BASE_VARIANT, "text": STAGE1_VARIANT}
    if prompt not in starts:
        raise ValueError(f"experts.train.prompt must be one of {sorted(starts)}, got {prompt!r}")
    return starts[prompt]


def gate_from_clustering(clustering: dict, params: GateParams, experts: ExpertsParams, kind: str | None = None):
    """The gate described by the clusters' centroids (a trained gate gets a fresh network)."""
    from pipeline.rec.gate import Gate, TrainedGate

    kind = kind or params.kind
    raw = np.asarray(clustering["raw_centroids"], np.float32)
    network = None
    if kind == "trained":
        import torch

        torch.manual_seed(params.train.seed)
        network = TrainedGate(raw.shape[1], params.train.hidden, len(raw) + 1)
    return Gate(kind, raw, np.asarray(clustering["mean"], np.float32), np.asarray(clustering["scale"], np.float32),
                params.temperature, experts.cold, network)
