"""The `vllm` backend: vLLM's in-process offline batch engine (`vllm.LLM`), for GPU machines.

Optional: `pip install thinkrec[vllm]`. vLLM is imported only when this backend is built. The
engine schedules the whole batch itself (continuous batching), so all requests go in one call.
The engine gets token ids, not chat text: `LLM.chat` would render the template and tokenize the
whole text, reading a title's "<|im_start|>" as the role token; `chat_token_ids` (the local
backend's) keeps every message's content text.
JSON schemas constrain decoding (`StructuredOutputsParams` from vLLM 0.10.2, `GuidedDecodingParams`
before). A reasoning model's "<think>...</think>" is split off into `reasoning`.
"""
from __future__ import annotations

from typing import Sequence

from pipeline.llm.cache import model_identity
from pipeline.llm.chat import (
    ChatRequest,
    ChatResponse,
    LLMError,
    OnAnswer,
    SamplingParams,
    Validate,
    chat_token_ids,
    split_reasoning,
)
from pipeline.llm.config import VLLMConfig


def _import_vllm():
    try:
        import vllm
    except ImportError as err:
        raise LLMError(
            "llm.backend: vllm is not installed; `pip install thinkrec[vllm]` on a GPU machine, or"
            " run `vllm serve` elsewhere and use llm.backend: openai"
        ) from err
    return vllm


class VLLMBackend:
    def __init__(self, model: str, config: VLLMConfig):
        self._vllm = _import_vllm()
        # Cache keys name local weights by content (a hub id by its id), and the dtype.
        self.model_name = f"{model_identity(model)}@{config.dtype}"
        self.engine = self._vllm.LLM(
            model=model,
            tensor_parallel_size=config.tensor_parallel_size,
            gpu_memory_utilization=config.gpu_memory_utilization,
            max_model_len=config.max_model_len,
            dtype=config.dtype,
        )

    def complete(
        self,
        requests: Sequence[ChatRequest],
        on_answer: OnAnswer | None = None,
        validate: Validate | None = None,  # unused: decoding is constrained to the schema
    ) -> list[ChatResponse]:
        if not requests:
            return []
        tokenizer = self.engine.get_tokenizer()
        prompts = [{"prompt_token_ids": chat_token_ids(tokenizer, [m.model_dump() for m in request.messages])}
                   for request in requests]
        sampling = [self._sampling(r.sampling, r.response_schema) for r in requests]
        outputs = self.engine.generate(prompts, sampling_params=sampling, use_tqdm=True)
        answers = []
        for index, output in enumerate(outputs):
            completion = output.outputs[0]
            text, reasoning = split_reasoning(completion.text)
            answer = ChatResponse(
                text=text, reasoning=reasoning,
                tokens_in=len(output.prompt_token_ids or []),
                tokens_out=len(completion.token_ids),
            )
            answers.append(answer)
            if on_answer is not None:
                on_answer(index, answer)
        return answers

    def _sampling(self, params: SamplingParams, schema: dict | None):
        kwargs = dict(
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            repetition_penalty=params.repetition_penalty,
            seed=params.seed if params.temperature > 0 else None,
        )
        if schema is not None:
            kwargs.update(self._structured(schema))
        return self._vllm.SamplingParams(**kwargs)

    def _structured(self, schema: dict) -> dict:
        module = self._vllm.sampling_params
        if hasattr(module, "StructuredOutputsParams"):  # vLLM >= 0.10.2
            return {"structured_outputs": module.StructuredOutputsParams(json=schema)}
        return {"guided_decoding": module.GuidedDecodingParams(json=schema)}
