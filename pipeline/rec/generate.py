"""Greedy generation from input embeddings (prompts whose CF slots hold projected vectors).

The LLM recommender builds `inputs_embeds` itself (soft tokens written into placeholder
positions), so generation starts from embeddings, not token ids. Rows are left-padded: every
prompt ends at the last position, where the answer starts.

Repetition controls are transformers' own logits processors, handed to `generate()` built here:
its `repetition_penalty=` argument exempts each row's first `padding` positions (the prompt, it
assumes), and with `inputs_embeds` alone those are the row's first generated tokens, so a
left-padded row would be penalised differently from the same prompt alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import LogitsProcessorList, NoRepeatNGramLogitsProcessor, RepetitionPenaltyLogitsProcessor

from pipeline.rec.params import RepetitionControls  # noqa: F401 (generation settings; callers import it here too)


@dataclass(frozen=True)
class Generation:
    tokens: torch.Tensor  # (B, T_new) generated ids, padded with pad_token_id after EOS
    first_logits: torch.Tensor  # (B, V) float32 logits of the first answer position


def logits_processors(controls: RepetitionControls) -> LogitsProcessorList:
    """transformers' processors for `controls`; both apply to the generated tokens only (the prompt
    is embeddings, not ids)."""
    processors = LogitsProcessorList()
    if controls.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(float(controls.repetition_penalty)))
    if controls.no_repeat_ngram_size > 0:
        processors.append(NoRepeatNGramLogitsProcessor(controls.no_repeat_ngram_size))
    return processors


@torch.inference_mode()
def greedy_generate(
    lm: torch.nn.Module,
    inputs_embeds: torch.Tensor,  # (B, T, H), left-padded
    attention_mask: torch.Tensor,  # (B, T), 0 on padding
    max_new_tokens: int,
    eos_token_id: int | list[int] | None,
    pad_token_id: int,
    min_new_tokens: int = 0,
    controls: RepetitionControls = RepetitionControls(),
) -> Generation:
    """Greedy decoding with the KV cache via `generate()`; also returns the first step's logits.

    `min_new_tokens` > 0 blocks EOS for that many steps; `controls` keep the text from looping
    (the first step's logits are returned before either, so they stay the model's own)."""
    out = lm.generate(
        inputs_embeds=inputs_embeds,
        attention_mask=attention_mask,
        max_new_tokens=max_new_tokens,
        min_new_tokens=min_new_tokens,
        do_sample=False,
        num_beams=1,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        repetition_penalty=1.0, no_repeat_ngram_size=0,  # the backbone's generation_config must not add its own
        logits_processor=logits_processors(controls),
        output_logits=True,
        return_dict_in_generate=True,
    )
    # With only embeddings as input, `sequences` holds just the new tokens.
    return Generation(tokens=out.sequences, first_logits=out.logits[0].float())


def decode_until_eos(tokenizer, tokens: torch.Tensor, eos_ids: set[int]) -> list[str]:
    """Text of each row up to (not including) its first EOS, special tokens dropped."""
    texts = []
    for row in tokens.tolist():
        stop = next((i for i, token in enumerate(row) if token in eos_ids), len(row))
        texts.append(tokenizer.decode(row[:stop], skip_special_tokens=True).strip())
    return texts
