"""`build_backend`: the chat backend that params.yaml's `llm` section chooses.

Each backend module is imported only when chosen, so `openai` never loads torch and `vllm` is
needed only by those who pick it.
"""
from __future__ import annotations

from pipeline.llm.chat import ChatBackend
from pipeline.llm.config import LLMConfig


def build_backend(config: LLMConfig) -> ChatBackend:
    if config.backend == "local":
        from pipeline.llm.local_backend import LocalBackend

        return LocalBackend(config.model, config.local)
    if config.backend == "openai":
        from pipeline.llm.openai_backend import OpenAIBackend

        return OpenAIBackend(config.model, config.openai)
    if config.backend == "vllm":
        from pipeline.llm.vllm_backend import VLLMBackend

        return VLLMBackend(config.model, config.vllm)
    raise ValueError(f"llm.backend: unknown backend {config.backend!r} (local | openai | vllm)")
