"""dtype: auto picks bf16 only where the hardware computes it (pipeline/rec/precision.py)."""
from __future__ import annotations

import pytest

from pipeline.rec.precision import cpu_has_bf16, resolve_precision

AMX = "flags : fpu sse avx2 avx512f amx_bf16 amx_tile"
AVX512_BF16 = "flags : fpu sse avx2 avx512f avx512_bf16"
NO_BF16 = "flags : fpu sse avx2 avx512f avx512_vnni"


def test_bf16_needs_a_bf16_instruction_set():
    assert cpu_has_bf16(AMX, "") and cpu_has_bf16(AVX512_BF16, "")
    assert not cpu_has_bf16(NO_BF16, "")


def test_capping_onednn_below_bf16_counts_as_no_bf16_hardware():
    assert not cpu_has_bf16(AMX, "AVX512_CORE_VNNI") and not cpu_has_bf16(AVX512_BF16, "avx2")
    assert cpu_has_bf16(AMX, "AVX512_CORE_AMX")


def test_explicit_values_win_and_unknown_ones_are_errors(monkeypatch):
    assert resolve_precision("float32") == "float32" and resolve_precision("bfloat16") == "bfloat16"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert resolve_precision("auto", "cpu") == "float32"
    with pytest.raises(ValueError, match="dtype must be one of"):
        resolve_precision("float16")
