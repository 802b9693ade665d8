"""Stage `gate`: the gate that weighs the experts per row from the user's CF state.

gate.kind "centroid": training-free (cosine to the clusters' raw centroids, pipeline/rec/gate.py);
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
from pipeline.artifacts import atomic_directory, atomic_paths, write_json
from pipeline.experts.assembly import NAME, gate_from_clustering
from pipeline.experts.params import ExpertsParams, GateParams
from pipeline.params import load_section
from pipeline.rec.assign import row_user_vectors
from pipeline.rec.clustering import read_clustering
from pipeline.rec.data import VariantData
from pipeline.rec.gate import Gate, route_kinds
from pipeline.rec.params import RecParams
from pipeline.rec.recommender import base_variant, load_recommender, variant_data
from pipeline.errors import run_stage
from stages.stamp import stamped


def main() -> None:
    started = time.perf_counter()
    params = load_section("gate", GateParams)
    experts = load_section("experts", ExpertsParams)
    rec_params = load_section("rec", RecParams)
    torch.set_num_threads(rec_params.threads)
    clustering, user_clusters = read_clustering()
    gate = gate_from_clustering(clustering, params, experts)
    warm = set(user_clusters["user"].astype(int))
    log = None
    if params.kind == "trained":
        from pipeline.experts.gate_training import train_gate

        # the fused model without a gate: the one being trained sets each batch's weights
        recommender = load_recommender(NAME, rec_params, experts.train.dtype, upper_layers=experts.train.upper_layers,
                                       gate=False)
        data = recommender.data
        rows = [e for e in recommender.encode(data.subset(params.subset), desc=f"encode {params.subset}")
                if experts.cold == "gate" or e.user in warm]
        log = train_gate(recommender.rec, gate, rows, row_user_vectors(rows, data.vectors),
                         experts.train.upper_layers, params.train)
    else:
        data = variant_data(base_variant(NAME))
    routes = {subset: subset_routes(gate, data, subset, warm) for subset in ("valid_small", "test_small")}
    seconds = time.perf_counter() - started
    # the gate and its metrics together or neither
    with atomic_directory(layout.GATE_DIR) as tmp, atomic_paths(layout.metrics("gate")) as (metrics_tmp,):
        write_json(gate.state(), tmp / "gate.json")
        if gate.network is not None:
            torch.save(gate.network.state_dict(), tmp / "gate.pt")
        write_json(stamped({"kind": params.kind, "experts": gate.experts, "routes": routes, "seconds": seconds,
                            "train": {k: v for k, v in (log or {}).items() if k != "seconds"} or None}, "gate"),
                   metrics_tmp)
    print(f"gate: {params.kind} over {gate.experts} experts; test_small rows {routes['test_small']}; {seconds:.0f} s")


def subset_routes(gate: Gate, data: VariantData, subset: str, warm: set[int]) -> dict[str, int]:
    """How `gate` routes `subset`'s rows (route_kinds), each by the user's CF state before the row."""
    frame = data.subset(subset)
    vectors = np.stack([data.vectors.user_state(int(u), int(r)) for u, r in zip(frame["user"], frame["row"])])
    return route_kinds(gate.weights(vectors, frame["user"].isin(warm).to_numpy()))


if __name__ == "__main__":
    run_stage(main)
