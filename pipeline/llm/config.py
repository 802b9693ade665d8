"""`LLMConfig`: params.yaml's `llm` section, which chooses and configures the chat backend."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LocalConfig(BaseModel):
    """transformers in-process (the default: the prepared SmolLM2 on CPU)."""

    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(8, ge=1)  # prompts per generate() call (left-padded)
    dtype: Literal["bfloat16", "float32"] = "bfloat16"
    threads: int = Field(2, ge=1)  # torch CPU threads


class OpenAIConfig(BaseModel):
    """Any OpenAI-compatible server (`vllm serve`, OpenAI, others) through the `openai` client."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = "http://127.0.0.1:8000/v1"
    api_key_env: str | None = "OPENAI_API_KEY"  # env var holding the key; None = server needs none
    concurrency: int = Field(16, ge=1)  # requests in flight at most
    max_retries: int = Field(5, ge=0)  # retries per request on 429/5xx/timeouts/bad answers
    timeout: float = Field(120.0, gt=0)  # seconds per attempt
    backoff_seconds: float = Field(1.0, ge=0)  # first retry delay; doubles per retry, full jitter
    max_backoff_seconds: float = Field(30.0, ge=0)
    # Send vLLM's sampling extensions (repetition_penalty); hosted APIs reject unknown fields.
    vllm_extensions: bool = True


class VLLMConfig(BaseModel):
    """vLLM's in-process offline batch engine (GPU; `pip install thinkrec[vllm]`)."""

    model_config = ConfigDict(extra="forbid")

    tensor_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    max_model_len: int | None = None  # None = the model's own
    dtype: str = "auto"


class LLMConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["local", "openai", "vllm"] = "local"
    # Local path or HF id (local, vllm), or the served model name (openai).
    model: str = "data/models/smollm2-135m-instruct"
    cache_path: str = ".llm_cache/responses.sqlite"
    local: LocalConfig = LocalConfig()
    openai: OpenAIConfig = OpenAIConfig()
    vllm: VLLMConfig = VLLMConfig()
