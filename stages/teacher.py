"""The CachedChat that the LLM data stages (keywords, traces, rationales) talk through, built from
params.yaml's `llm` section: every call is cached, counted and timed."""
from __future__ import annotations

import time

from pydantic import Field

from pipeline.llm.backends import build_backend
from pipeline.llm.cache import CachedChat
from pipeline.llm.chat import SamplingParams
from pipeline.llm.config import LLMConfig
from pipeline.params import Strict, load_section


class TeacherParams(Strict):
    """What every teacher stage's params section has: its sampling (max_tokens, repetition_penalty)."""


    max_tokens: int = Field(ge=1)
    repetition_penalty: float = Field(gt=0)


def teacher_chat(params: TeacherParams) -> tuple[CachedChat, SamplingParams]:
    """(the cached teacher client, the stage's sampling params)."""
    llm = load_section("llm", LLMConfig)
    sampling = SamplingParams(max_tokens=params.max_tokens, repetition_penalty=params.repetition_penalty)
    return CachedChat(build_backend(llm), llm.cache_path), sampling


def llm_stage_metrics(client: CachedChat, started: float, cost=None) -> dict:
    """The `llm` counters (this run's calls only) and `stage_seconds` since `started`
    (time.perf_counter()); with `cost` (requests, tokens_in, tokens_out attributes) also `teacher`:
    what the stage costs with an empty cache."""
    metrics = {"llm": client.stats(), "stage_seconds": round(time.perf_counter() - started, 2)}
    if cost is not None:
        metrics["teacher"] = {"requests": cost.requests, "tokens_in": cost.tokens_in, "tokens_out": cost.tokens_out}
    return metrics
