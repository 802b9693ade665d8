"""Data-parallel training (pipeline/rec/distributed.py): `torchrun --nproc_per_node 2` (gloo, CPU)
trains the tiny model's LoRA (tallrec) and then its projector (collm) to the weights and scores one
process gets with the same global batch (4 rows x 8 micro-batches per step), and only rank 0 writes."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import rec_tiny
from pipeline.artifacts import read_frame

REPO = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-5  # float32; the 2-process sum adds the same per-micro-batch gradients in another order
pytestmark = pytest.mark.slow


def _train(root: Path, variant: str, nproc: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}  # loopback only
    launcher = [sys.executable, "-m", "stages.train_rec"] if nproc == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
        "-m", "stages.train_rec"]
    result = subprocess.run([*launcher, variant], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-8000:]
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two copies of one tiny project, trained with 1 and with 2 processes: {nproc: root}."""
    base = tmp_path_factory.mktemp("ddp")
    one = base / "one"
    rec_tiny.write_tiny_model(one / "tiny")
    rec_tiny.write_tiny_artifacts(one)
    params = rec_tiny.tiny_params(one / "tiny", steps=3)
    rec_tiny.write_params(one, params)
    two = base / "two"
    shutil.copytree(one, two)
    roots = {1: one, 2: two}
    for nproc, root in roots.items():
        for variant in ("tallrec", "collm"):
            _train(root, variant, nproc)
    return roots


def test_two_processes_train_the_weights_of_one_with_the_same_global_batch(runs):
    one, two = runs[1], runs[2]
    adapter = "data/rec/tallrec/adapter/adapter_model.safetensors"
    single, double = load_file(one / adapter), load_file(two / adapter)
    assert set(single) == set(double) and single
    for name in single:
        torch.testing.assert_close(double[name], single[name], rtol=0, atol=TOLERANCE)
    lora_b = [single[name] for name in single if "lora_B" in name]
    assert lora_b and max(float(t.abs().max()) for t in lora_b) > 1e-3  # B starts at zero: training moved it
    proj_one = torch.load(one / "data/rec/collm/projector.pt")["state"]
    proj_two = torch.load(two / "data/rec/collm/projector.pt")["state"]
    for name in proj_one:
        torch.testing.assert_close(proj_two[name], proj_one[name], rtol=0, atol=TOLERANCE)


def test_two_processes_log_the_whole_global_batch_and_score_alike(runs):
    one, two = runs[1], runs[2]
    for variant in ("tallrec", "collm"):
        log_one = json.loads((one / f"data/rec/{variant}/train_log.json").read_text())
        log_two = json.loads((two / f"data/rec/{variant}/train_log.json").read_text())
        assert len(log_two["steps"]) == 3
        for a, b in zip(log_one["steps"], log_two["steps"]):
            assert a["tokens"] == b["tokens"] and a["kinds"] == b["kinds"] and a["answers"] == b["answers"]
            assert abs(a["loss"] - b["loss"]) < 1e-4
        scores_one = read_frame(one / f"data/predictions/{variant}.parquet")
        scores_two = read_frame(two / f"data/predictions/{variant}.parquet")
        assert scores_one[["row", "user", "item"]].equals(scores_two[["row", "user", "item"]])
        np.testing.assert_allclose(scores_two["score"], scores_one["score"], rtol=0, atol=1e-4)
