"""`LLMConfig`: params.yaml's `llm` section, which chooses and configures the chat backend. Every
key is required: params.yaml holds the defaults."""
from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from pipeline.params import Strict

# What environment variables holding keys are called (OPENAI_API_KEY, VLLM_API_KEY): upper case.
# Keys look otherwise (sk-..., hex, mixed case), so a value that is not like this is never shown.
_VARIABLE_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")


def looks_like_variable_name(value: str) -> bool:
    return _VARIABLE_NAME.fullmatch(value) is not None


class LocalConfig(Strict):
    """transformers in-process (params.yaml's backend: the prepared SmolLM2 on CPU)."""


    batch_size: int = Field(ge=1)  # prompts per generate() call (left-padded)
    dtype: Literal["auto", "bfloat16", "float32"]  # auto: bf16 where the hardware computes it (pipeline/rec/precision.py)
    threads: int = Field(ge=1)  # torch CPU threads


class OpenAIConfig(Strict):
    """Any OpenAI-compatible server (`vllm serve`, OpenAI, others) through the `openai` client."""


    base_url: str
    api_key_env: str | None  # env var holding the key; None = server needs none
    concurrency: int = Field(ge=1)  # requests in flight at most
    max_retries: int = Field(ge=0)  # retries per request on 429/5xx/timeouts/bad answers
    timeout: float = Field(gt=0)  # seconds per attempt, wall clock: connect, wait, read the whole body
    backoff_seconds: float = Field(ge=0)  # first retry delay; doubles per retry, full jitter
    max_backoff_seconds: float = Field(ge=0)
    # Send vLLM's sampling extensions (repetition_penalty); hosted APIs reject unknown fields.
    vllm_extensions: bool

    def __repr_args__(self):
        # A user who put the key itself in api_key_env must not see it in a repr, a log or an error.
        for name, value in super().__repr_args__():
            if name == "api_key_env" and value is not None and not looks_like_variable_name(value):
                value = "<hidden: not a variable name>"
            yield name, value


class VLLMConfig(Strict):
    """vLLM's in-process offline batch engine (GPU; `pip install thinkrec[vllm]`)."""


    tensor_parallel_size: int = Field(ge=1)
    gpu_memory_utilization: float = Field(gt=0, le=1)
    max_model_len: int | None  # None = the model's own
    dtype: str


class LLMConfig(Strict):

    backend: Literal["local", "openai", "vllm"]
    # Local path or HF id (local, vllm), or the served model name (openai).
    model: str
    cache_path: str
    local: LocalConfig
    openai: OpenAIConfig
    vllm: VLLMConfig
