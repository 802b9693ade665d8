"""Stage `gate`: the gate that weighs the experts per row from the user's CF state.

gate.kind "centroid": training-free (cosine to the clusters' raw centroids, pipeline/experts/gate.py);
"trained": a small network trained on `gate.subset` rows (validation, never test) to minimise the
fused model's BCE, the lower layers run once per row.

Usage: python -m stages.gate
Writes data/experts/gate/{gate.json, gate.pt (trained)} and metrics/gate.json (how test and
validation rows are routed).
"""
from __future__ import annotations

import time

import numpy as np
import torch

from pipeline import layout
from pipeline.artifacts import atomic_directory, write_json
from pipeline.cf.config import CFParams
from pipeline.experts.assembly import (
    BASE_VARIANT, GATE_DIR, read_clustering, gate_from_clustering, used_expert_dirs,
)
from pipeline.experts.assign import row_user_vectors
from pipeline.experts.gate import route_kinds
from pipeline.experts.params import ExpertsParams, GateParams
from pipeline.params import load_section
from pipeline.rec.data import load_variant_data, variant_encoder
from pipeline.rec.inputs import REC_DIR, rec_inputs
from pipeline.rec.params import RecParams
from pipeline.rec.variants import get_variant
from pipeline.errors import run_stage


def main() -> None:
    started = time.perf_counter()
    params = load_section("gate", GateParams)
    experts = load_section("experts", ExpertsParams)
    rec_params = load_section("rec", RecParams)
    torch.set_num_threads(rec_params.threads)
    clustering, user_clusters = read_clustering()
    gate = gate_from_clustering(clustering, params, experts)
    spec = get_variant(BASE_VARIANT)
    data = load_variant_data(spec, rec_inputs(spec, load_section("cf", CFParams).model))
    warm = set(user_clusters["user"].astype(int))
    log = None
    if params.kind == "trained":
        from pipeline.experts.fused import load_fused
        from pipeline.experts.gate_training import train_gate
        from pipeline.rec.device import resolve_device

        rec = load_fused(rec_params.backbone, REC_DIR / BASE_VARIANT, used_expert_dirs(clustering),
                         experts.train.upper_layers, resolve_device(rec_params.device), experts.train.dtype)
        encode = variant_encoder(spec, rec_params.prompt, rec.tokenizer, data)
        rows = [e for e in encode(data.subset(params.subset), None, f"encode {params.subset}")
                if experts.cold == "gate" or e.user in warm]
        log = train_gate(rec, gate, rows, row_user_vectors(rows, data.vectors), experts.train.upper_layers,
                         params.train)
    with atomic_directory(GATE_DIR) as tmp:
        write_json(gate.state(), tmp / "gate.json")
        if gate.network is not None:
            torch.save(gate.network.state_dict(), tmp / "gate.pt")
    routes = {}
    for subset in ("valid_small", "test_small"):
        frame = data.subset(subset)
        vectors = np.stack([data.vectors.user_state(int(u), int(r)) for u, r in zip(frame["user"], frame["row"])])
        routes[subset] = route_kinds(gate.weights(vectors, frame["user"].isin(warm).to_numpy()))
    seconds = time.perf_counter() - started
    write_json({"kind": params.kind, "experts": gate.experts, "routes": routes, "seconds": seconds,
                "train": {k: v for k, v in (log or {}).items() if k != "seconds"} or None}, layout.metrics("gate"))
    print(f"gate: {params.kind} over {gate.experts} experts; test_small rows {routes['test_small']}; {seconds:.0f} s")


if __name__ == "__main__":
    run_stage(main)
