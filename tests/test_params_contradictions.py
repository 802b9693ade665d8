"""Params that contradict each other are one-line errors naming both keys when they are loaded
(or, where the count is known only at run time, a warning): found when a new user overrode the
paper profile for a CPU."""
from __future__ import annotations

import pytest
import yaml

from params_base import section
from pipeline.errors import BadParams
from pipeline.llm.backends import build_backend
from pipeline.llm.config import LLMConfig
from pipeline.params import load_section
from pipeline.rec.params import RecParams


def test_a_warmup_as_long_as_the_planned_steps_names_both_keys(tmp_path):
    rec = section("rec")
    rec["stage1"].update(steps=50, warmup_steps=100)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"rec": rec}))
    with pytest.raises(BadParams, match=r"rec.stage1.warmup_steps: 100 is not shorter than the 50 steps the run plans \(steps\)"):
        load_section("rec", RecParams, tmp_path / "params.yaml")
    rec["stage1"].update(steps=None, epochs=2, steps_per_epoch=40, eval_every=0)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"rec": rec}))
    with pytest.raises(BadParams, match=r"100 is not shorter than the 80 steps .*epochs x steps_per_epoch"):
        load_section("rec", RecParams, tmp_path / "params.yaml")


def test_the_local_backend_with_a_served_model_name_names_both_keys(tmp_path):
    config = LLMConfig.model_validate({**section("llm"), "backend": "local", "model": "qwq-32b"})
    with pytest.raises(BadParams, match=r"llm.model 'qwq-32b' is not a local model directory, but llm.backend is local"):
        build_backend(config)
