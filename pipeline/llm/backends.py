"""`build_backend`: the chat backend that params.yaml's `llm` section chooses.

Each backend module is imported only when chosen, so `openai` never loads torch and `vllm` is
needed only by those who pick it.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.errors import BadParams
from pipeline.llm.chat import ChatBackend
from pipeline.llm.config import LLMConfig


def build_backend(config: LLMConfig) -> ChatBackend:
    if config.backend == "local":
        from pipeline.llm.local_backend import LocalBackend

        check_local_model(config.model)

        return LocalBackend(config.model, config.local)
    if config.backend == "openai":
        from pipeline.llm.openai_backend import OpenAIBackend

        return OpenAIBackend(config.model, config.openai)
    if config.backend == "vllm":
        from pipeline.llm.vllm_backend import VLLMBackend

        return VLLMBackend(config.model, config.vllm)
    raise ValueError(f"llm.backend: unknown backend {config.backend!r} (local | openai | vllm)")


def check_local_model(model: str) -> None:
    """llm.backend local loads llm.model from disk; a name with no such directory and no "org/"
    part is a served model's name (a profile for a server, overridden to local), which the model
    hub would be asked for and fail on: say so naming both keys, before any load."""
    if not Path(model).is_dir() and "/" not in model:
        raise BadParams(f"llm.model {model!r} is not a local model directory, but llm.backend is local: "
                        "a served model's name? set llm.backend: openai (with llm.openai.base_url), or llm.model "
                        "to a directory such as prepare_model.output")
