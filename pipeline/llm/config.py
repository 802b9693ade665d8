"""`LLMConfig`: params.yaml's `llm` section, which chooses and configures the chat backend. Every
key is required: params.yaml holds the defaults."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LocalConfig(BaseModel):
    """transformers in-process (params.yaml's backend: the prepared SmolLM2 on CPU)."""

    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(ge=1)  # prompts per generate() call (left-padded)
    dtype: Literal["bfloat16", "float32"]
    threads: int = Field(ge=1)  # torch CPU threads


class OpenAIConfig(BaseModel):
    """Any OpenAI-compatible server (`vllm serve`, OpenAI, others) through the `openai` client."""

    model_config = ConfigDict(extra="forbid")

    base_url: str
    api_key_env: str | None  # env var holding the key; None = server needs none
    concurrency: int = Field(ge=1)  # requests in flight at most
    max_retries: int = Field(ge=0)  # retries per request on 429/5xx/timeouts/bad answers
    timeout: float = Field(gt=0)  # seconds per attempt
    backoff_seconds: float = Field(ge=0)  # first retry delay; doubles per retry, full jitter
    max_backoff_seconds: float = Field(ge=0)
    # Send vLLM's sampling extensions (repetition_penalty); hosted APIs reject unknown fields.
    vllm_extensions: bool


class VLLMConfig(BaseModel):
    """vLLM's in-process offline batch engine (GPU; `pip install thinkrec[vllm]`)."""

    model_config = ConfigDict(extra="forbid")

    tensor_parallel_size: int = Field(ge=1)
    gpu_memory_utilization: float = Field(gt=0, le=1)
    max_model_len: int | None  # None = the model's own
    dtype: str


class LLMConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["local", "openai", "vllm"]
    # Local path or HF id (local, vllm), or the served model name (openai).
    model: str
    cache_path: str
    local: LocalConfig
    openai: OpenAIConfig
    vllm: VLLMConfig
