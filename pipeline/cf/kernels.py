"""Pin the CPU kernels' code paths of the CF stage, so its outputs are the same bytes on any x86-64
CPU with AVX2 however the stage is started (dvc repro, `python -m stages.cf mf` by hand, a script).

ATen picks its vectorised kernels, MKL its GEMM branch and oneDNN its ISA by the CPU's instruction
sets; each reads its variable once, when it loads. So `pin_cf_kernels()` must run before torch is
imported: stages/cf.py calls it first thing. Measurements: docs/benchmarks.md ("Same bytes on any
x86-64 CPU with AVX2"). This module imports nothing heavy on purpose.
"""
from __future__ import annotations

import os
import sys

# ATen: its AVX2 kernels even where AVX-512 exists; MKL: the branch Intel documents as the same on
# Intel and other CPUs; oneDNN: at most AVX2 (no CF model calls it today: a cap for a later kernel).
CF_KERNELS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def pin_cf_kernels(environ: dict | None = None) -> None:
    """Set CF_KERNELS in the environment (they win over the caller's). Raises RuntimeError when
    torch is already loaded with other values: the caps would silently not apply."""
    environ = os.environ if environ is None else environ
    differs = {key: value for key, value in CF_KERNELS.items() if environ.get(key) != value}
    if differs and "torch" in sys.modules:
        raise RuntimeError("pin_cf_kernels() runs after torch was imported, so these would not apply: "
                           + ", ".join(f"{key}={value}" for key, value in differs.items()))
    environ.update(CF_KERNELS)
