"""The `local` backend: a Hugging Face causal LM in-process, batched generation with left padding.

Default model: the prepared SmolLM2-135M-Instruct (data/models/smollm2-135m-instruct); any local
path or HF id works. Requests are grouped by sampling parameters and sorted by prompt length so a
batch pads little; left padding keeps every prompt's last token at the end, where generation starts.

Prompts of a batch that start with the same tokens (a system prompt, worked examples) share that
prefix's KV cache: it is run once, and each row's own tokens follow it, padded on their left
(positions come from the attention mask, so a row reads exactly like its unpadded prompt). On the
keyword prompts (139 of ~166 tokens shared) this halves a batch's time; in float32 the answers are
the same as with plain left padding (tests/test_llm_local.py).
"""
from __future__ import annotations

from itertools import groupby
from typing import Sequence

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache, GenerationConfig

from pipeline.llm.cache import model_identity
from pipeline.llm.chat import (
    ChatRequest,
    ChatResponse,
    OnAnswer,
    SamplingParams,
    Validate,
    chat_token_ids,
    render_chat,
    split_reasoning,
)
from pipeline.llm.config import LocalConfig
from pipeline.rec.precision import resolve_precision

# A common prefix shorter than this many tokens is not worth its separate forward pass.
MIN_SHARED_PREFIX = 16


class LocalBackend:
    def __init__(self, model: str, config: LocalConfig):
        torch.set_num_threads(config.threads)
        self.batch_size = config.batch_size
        # Cache keys name the weights by content, and the dtype, which changes the answers too.
        precision = resolve_precision(config.dtype)  # the cache key names the resolved dtype
        self.model_name = f"{model_identity(model)}@{precision}"
        self.tokenizer = AutoTokenizer.from_pretrained(model, padding_side="left")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=getattr(torch, precision))
        self.model.eval()
        # Stop at the tokenizer's EOS (ChatML's <|im_end|>) and any EOS the model's config names.
        self.eos_ids = sorted(
            set(_as_list(self.model.generation_config.eos_token_id)) | {self.tokenizer.eos_token_id}
        )

    def render(self, request: ChatRequest) -> str:
        """The prompt text: the model's chat template, ending where the assistant's turn starts; a
        request whose last message is the assistant's is a prefill: the answer continues that
        message (its text is not repeated in the response)."""
        return render_chat(self.tokenizer, [message.model_dump() for message in request.messages])

    def encode(self, request: ChatRequest) -> list[int]:
        """The prompt's token ids: render()'s text, with every message's content tokenized as text
        (a title or review holding "<|im_start|>" stays text; the template's own tokens stay special)."""
        return chat_token_ids(self.tokenizer, [message.model_dump() for message in request.messages])

    def complete(
        self,
        requests: Sequence[ChatRequest],
        on_answer: OnAnswer | None = None,
        validate: Validate | None = None,  # unused: decoding is not constrained, callers parse
    ) -> list[ChatResponse]:
        ids = [self.encode(r) for r in requests]
        by_sampling = lambda i: _sampling_key(requests[i].sampling)
        order = sorted(range(len(requests)), key=lambda i: (by_sampling(i), len(ids[i])))
        answers: list[ChatResponse | None] = [None] * len(requests)
        for _, group in groupby(order, key=by_sampling):
            group = list(group)
            for start in range(0, len(group), self.batch_size):
                batch = group[start : start + self.batch_size]
                sampling = requests[batch[0]].sampling
                for index, answer in zip(batch, self.generate([ids[i] for i in batch], sampling)):
                    answers[index] = answer
                    if on_answer is not None:
                        on_answer(index, answer)
        return answers

    @torch.inference_mode()
    def generate(self, ids: list[list[int]], sampling: SamplingParams) -> list[ChatResponse]:
        """One batched generate() call on prompt token ids; tokens_out counts up to and including
        the first EOS."""
        inputs = self._batch_inputs(ids)
        if sampling.temperature > 0:
            torch.manual_seed(sampling.seed)
        output = self.model.generate(**inputs, generation_config=self._generation_config(sampling))
        new_tokens = output[:, inputs["input_ids"].shape[1] :]  # (B, T_new)
        responses = []
        for row, prompt in zip(new_tokens.tolist(), ids):
            stop = next((i + 1 for i, token in enumerate(row) if token in self.eos_ids), len(row))
            text = self.tokenizer.decode(row[:stop], skip_special_tokens=True)
            answer, reasoning = split_reasoning(text)
            responses.append(
                ChatResponse(text=answer, reasoning=reasoning, tokens_in=len(prompt), tokens_out=stop)
            )
        return responses

    def _batch_inputs(self, ids: list[list[int]]) -> dict:
        """generate() inputs: input_ids and attention_mask (B, T) = the batch's shared prefix, then
        each row's own tokens left-padded; with a shared prefix also its KV cache (run once)."""
        shared = shared_prefix_length(ids) if len(ids) > 1 else 0
        shared = shared if shared >= MIN_SHARED_PREFIX else 0
        width = max(len(prompt) for prompt in ids)
        pad = self.tokenizer.pad_token_id
        rows, mask = [], []
        for prompt in ids:
            gap = width - len(prompt)
            rows.append(prompt[:shared] + [pad] * gap + prompt[shared:])
            mask.append([1] * shared + [0] * gap + [1] * (len(prompt) - shared))
        inputs = {"input_ids": torch.tensor(rows), "attention_mask": torch.tensor(mask)}
        if shared:
            cache = DynamicCache()
            self.model(input_ids=torch.tensor([ids[0][:shared]]), past_key_values=cache, use_cache=True)
            cache.batch_repeat_interleave(len(ids))
            inputs["past_key_values"] = cache
        return inputs

    def _generation_config(self, sampling: SamplingParams) -> GenerationConfig:
        sample = sampling.temperature > 0
        return GenerationConfig(
            max_new_tokens=sampling.max_tokens,
            do_sample=sample,
            temperature=sampling.temperature if sample else None,
            top_p=sampling.top_p if sample else None,
            top_k=None,
            repetition_penalty=sampling.repetition_penalty,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.eos_ids,
        )


def _sampling_key(sampling: SamplingParams) -> tuple:
    return tuple(sorted(sampling.model_dump().items()))


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def shared_prefix_length(ids: list[list[int]]) -> int:
    """Tokens every row starts with, leaving each row at least one token of its own (generation
    needs an uncached last token)."""
    limit = min(len(prompt) for prompt in ids) - 1
    length = 0
    while length < limit and all(prompt[length] == ids[0][length] for prompt in ids):
        length += 1
    return length
