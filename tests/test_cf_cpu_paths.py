"""The cf stage's command in dvc.yaml fixes its CPU kernels' code paths: the same bytes whatever
instruction sets the CPU offers beyond AVX2. A CPU with fewer is emulated by capping each library
from outside (ATen, MKL, oneDNN, numpy); on an AVX-512 CPU the uncapped stage is shown to differ, so
the comparison can fail."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from synthetic_ingest import write_synthetic_ingest

REPO = Path(__file__).resolve().parents[1]
MODELS = ("mf", "lightgcn", "sasrec")
# Everything the CPU offers, said explicitly, vs an AVX2 CPU's caps.
UNCAPPED = {"ATEN_CPU_CAPABILITY": "avx512", "MKL_ENABLE_INSTRUCTIONS": "AVX512", "ONEDNN_MAX_CPU_ISA": "ALL"}
AVX2_CAPS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2",
             "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR"}

pytestmark = pytest.mark.slow  # eight short trainings in subprocesses, about 40 s


def cf_outputs(root: Path, command: str, outside: dict[str, str], models=MODELS) -> dict[str, bytes]:
    """Run `command` for each of `models` in `root` with `outside` added to the environment; every
    file under data/ (not the ingest), by path."""
    env = {**os.environ, **outside, "PYTHONPATH": str(REPO),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for name in models:
        done = subprocess.run(command.replace("${item}", name), shell=True, cwd=root, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    written = (p for p in (root / "data").rglob("*") if p.is_file() and "ingest" not in p.parts)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(written)}


def differing(a: dict[str, bytes], b: dict[str, bytes]) -> list[str]:
    assert a.keys() == b.keys()
    return [path for path in a if a[path] != b[path]]


def test_cf_stage_command_gives_the_same_bytes_with_or_without_avx512(tmp_path):
    command = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["cf"]["do"]["cmd"]
    params = yaml.safe_load((REPO / "params.yaml").read_text())["cf"]
    params["train"].update(max_epochs=2, patience=1)
    runs = {}
    for label, outside in (("uncapped", UNCAPPED), ("avx2", AVX2_CAPS)):
        root = tmp_path / label
        write_synthetic_ingest(root, 40, 50)
        ranking = yaml.safe_load((REPO / "params.yaml").read_text())["ranking"]
        (root / "params.yaml").write_text(yaml.safe_dump({"cf": params, "ranking": ranking}))
        runs[label] = (root, cf_outputs(root, command, outside))
    assert len(runs["uncapped"][1]) == 3 * 4 + 3 + 3 + 1  # + the full-catalogue ranks
    assert differing(runs["uncapped"][1], runs["avx2"][1]) == []

    if torch.backends.cpu.get_cpu_capability() != "AVX512":
        pytest.skip("no AVX-512 here: the check that the plain command differs needs it")
    plain, root = "python -m stages.cf ${item}", runs["uncapped"][0]  # SASRec's softmax differs, at least
    uncapped, capped = (cf_outputs(root, plain, outside, ("sasrec",)) for outside in (UNCAPPED, AVX2_CAPS))
    assert "data/predictions/sasrec.parquet" in differing(uncapped, capped)
