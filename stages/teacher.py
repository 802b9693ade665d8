"""The CachedChat that the LLM data stages (keywords, traces, rationales) talk through, built from
params.yaml's `llm` section: every call is cached, counted and timed."""
from __future__ import annotations

from pipeline.llm.backends import build_backend
from pipeline.llm.cache import CachedChat
from pipeline.llm.config import LLMConfig
from stages.params import load_section


def teacher_chat() -> CachedChat:
    llm = load_section("llm", LLMConfig)
    return CachedChat(build_backend(llm), llm.cache_path)
