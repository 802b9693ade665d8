"""The torch stages' precision: params.yaml `dtype: auto | bfloat16 | float32`.

"auto" picks bf16 where the device computes it in hardware and fp32 elsewhere. On a CPU without
bf16 instructions a bf16 matmul is emulated: measured 32 GFLOP/s against fp32's 226 on one such
2-core machine, while a CPU with AMX or AVX512_BF16 runs bf16 at 400-780 (docs/benchmarks.md). So:
- CUDA: bf16 when the GPU supports it (torch.cuda.is_bf16_supported), else fp32;
- CPU: bf16 when /proc/cpuinfo lists amx_bf16 or avx512_bf16 and oneDNN is not capped below them
  (ONEDNN_MAX_CPU_ISA, the variable that also lets a bf16 machine time the fp32 path), else fp32.
Explicit values are used as they are. Every metrics file records the precision actually used.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import torch

from pipeline.rec.params import PRECISIONS

BF16_FLAGS = ("amx_bf16", "avx512_bf16")
# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) under which its bf16 kernels are not hardware ones
NO_BF16_ISAS = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX512_CORE", "AVX512_CORE_VNNI")


def resolve_precision(setting: str, device: torch.device | str = "cpu") -> str:
    """"bfloat16" or "float32" for a dtype setting on `device` (see the module docstring)."""
    if setting not in PRECISIONS:
        raise ValueError(f"dtype must be one of {PRECISIONS}, got {setting!r}")
    if setting != "auto":
        return setting
    if torch.device(device).type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "bfloat16" if cpu_has_bf16() else "float32"


def cpu_has_bf16(cpuinfo: str | None = None, isa_cap: str | None = None) -> bool:
    """True when the CPU lists a bf16 instruction set and ONEDNN_MAX_CPU_ISA leaves it usable."""
    flags = set((cpuinfo if cpuinfo is not None else _cpuinfo()).split())
    cap = (isa_cap if isa_cap is not None else os.environ.get("ONEDNN_MAX_CPU_ISA", "")).upper()
    return any(flag in flags for flag in BF16_FLAGS) and cap not in NO_BF16_ISAS


@lru_cache(maxsize=1)
def _cpuinfo() -> str:
    path = Path("/proc/cpuinfo")
    return path.read_text() if path.exists() else ""


def torch_dtype(precision: str) -> torch.dtype:
    return {"bfloat16": torch.bfloat16, "float32": torch.float32}[precision]
