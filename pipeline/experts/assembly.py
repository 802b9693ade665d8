"""Expert fusion put together from the artifacts the expert stages (clusters, expert@<slot>, gate,
thinkrec_experts) write: the clustering, the experts' directories, the gate, and ThinkRec's model
and prompts, which the experts start from (`load_fused_setup`, for scoring with all of them)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import registry, schemas
from pipeline.artifacts import expect_content, load_torch, read_frame, read_json_object
from pipeline.cf.config import CFParams
from pipeline.errors import MissingInput
from pipeline.experts.params import ExpertsParams, GateParams
from pipeline.layout import CLUSTERS_DIR, EXPERTS_DIR, GATE_DIR, expert_dir  # noqa: F401 (the stages' paths)
from pipeline.params import load_section

NAME = "thinkrec_experts"  # the registry entry of the fused model
BASE_VARIANT = registry.get_model(NAME).starts_from  # its stage-1 LoRA seeds the experts; its projector is kept


def read_clustering() -> tuple[dict, pd.DataFrame]:
    """(clustering.json, user_clusters frame) written by the clusters stage."""
    path = CLUSTERS_DIR / "clustering.json"
    if not path.exists():
        raise MissingInput(f"{path}: missing; run `dvc repro clusters`")
    return read_json_object(path), read_frame(CLUSTERS_DIR / "user_clusters.parquet", schemas.USER_CLUSTERS)


def used_expert_dirs(clustering: dict) -> list[Path]:
    return [expert_dir(k) for k in range(clustering["n"])]


def read_gate():
    """The gate the gate stage saved (pipeline.experts.gate.Gate): gate.json, and gate.pt for a
    trained one. A damaged or foreign file is an UnreadableArtifact naming it."""
    from pipeline.experts.gate import Gate

    described, network = GATE_DIR / "gate.json", GATE_DIR / "gate.pt"
    state = read_json_object(described)
    network_state = load_torch(network) if network.exists() else None
    # both files are the gate stage's: a key gate.json lacks, or weights of other shapes, name the directory
    with expect_content(GATE_DIR, "a gate (gate.json, and gate.pt of the network it describes)"):
        return Gate.from_state(state, network_state)


def gate_from_clustering(clustering: dict, params: GateParams, experts: ExpertsParams, kind: str | None = None):
    """The gate described by the clusters' centroids (a trained gate gets a fresh network)."""
    from pipeline.experts.gate import Gate, TrainedGate

    kind = kind or params.kind
    raw = np.asarray(clustering["raw_centroids"], np.float32)
    network = None
    if kind == "trained":
        import torch

        torch.manual_seed(params.train.seed)
        network = TrainedGate(raw.shape[1], params.train.hidden, len(raw) + 1)
    return Gate(kind, raw, np.asarray(clustering["mean"], np.float32), np.asarray(clustering["scale"], np.float32),
                params.temperature, experts.cold, network)


@dataclass
class FusedSetup:
    """Everything that scores with ThinkRec + experts: params, clusters, gate, ThinkRec's data and
    prompt encoder, and the fused model."""

    experts: ExpertsParams
    rec_params: object  # pipeline.rec.params.RecParams
    clustering: dict
    user_clusters: pd.DataFrame
    gate: object  # pipeline.experts.gate.Gate
    data: object  # pipeline.rec.data.VariantData
    warm: set[int]
    rec: object  # pipeline.rec.model.RecModel with fused experts
    encode: object  # pipeline.rec.data.Encoder


def load_fused_setup() -> FusedSetup:
    """Read params.yaml, the clusters, the gate and ThinkRec's artifacts; build the fused model."""
    import torch

    from pipeline.experts.fused import load_fused
    from pipeline.rec.data import load_variant_data, variant_encoder
    from pipeline.rec.device import resolve_device
    from pipeline.rec.inputs import REC_DIR, rec_inputs
    from pipeline.rec.params import RecParams
    from pipeline.rec.variants import get_variant

    experts = load_section("experts", ExpertsParams)
    rec_params = load_section("rec", RecParams)
    torch.set_num_threads(rec_params.threads)
    clustering, user_clusters = read_clustering()
    gate = read_gate()
    spec = get_variant(BASE_VARIANT)
    data = load_variant_data(spec, rec_inputs(spec, load_section("cf", CFParams).model))
    rec = load_fused(rec_params.backbone, REC_DIR / BASE_VARIANT, used_expert_dirs(clustering),
                     experts.train.upper_layers, resolve_device(rec_params.device), experts.train.dtype)
    return FusedSetup(experts, rec_params, clustering, user_clusters, gate, data,
                      set(user_clusters["user"].astype(int)), rec,
                      variant_encoder(spec, rec_params.prompt, rec.tokenizer, data))
