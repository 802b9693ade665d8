"""The trained recommender writes its reasoning: greedy answers to the prompts it was trained on
(pipeline/explain scores them against the teacher's gold traces; `thinkrec recommend` shows them)."""
from __future__ import annotations

from typing import Sequence

import torch
from tqdm import tqdm

from pipeline.rec.batching import collate, length_buckets
from pipeline.rec.examples import RecExample
from pipeline.rec.fusion import routing
from pipeline.rec.generate import RepetitionControls, decode_until_eos, greedy_generate
from pipeline.rec.model import RecModel
from pipeline.rec.precision import resolve_precision, torch_dtype
from pipeline.rec.scoring import generation_inputs


def write_reasoning(
    rec: RecModel,
    examples: Sequence[RecExample],
    batch_size: int,
    max_new_tokens: int,
    min_new_tokens: int = 0,
    dtype: str = "bfloat16",
    desc: str = "explain",
    controls: RepetitionControls = RepetitionControls(),
) -> list[str]:
    """Greedy answers of `rec` to the examples' prompts (the prompts it was trained on), in order.

    Rows are batched by prompt length (left-padded). `min_new_tokens` keeps EOS away for that
    many tokens: most training answers are a bare "Yes"/"No", so without it greedy decoding often
    stops before any reasoning; `controls` keep it from looping ("Yes No No No ..."). With dtype
    bfloat16 (or auto on bf16 hardware, precision.py) the whole model is cast once (in place)."""
    rec.eval()
    rec.to(torch_dtype(resolve_precision(dtype, rec.device)))
    tokenizer = rec.tokenizer
    eos_ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    texts: list[str] = [""] * len(examples)
    batches = length_buckets([len(e.prompt_ids) for e in examples], batch_size)
    with torch.no_grad():
        for index in tqdm(batches, desc=desc, leave=False):
            chunk = [examples[i] for i in index]
            inputs = generation_inputs(rec, chunk)
            weights = collate(chunk, rec.pad_id, with_answers=False).expert_weights
            with routing(rec.body, weights):  # fused experts: every row its own mixture
                out = greedy_generate(
                    rec.llm, inputs["inputs_embeds"], inputs["attention_mask"], max_new_tokens,
                    tokenizer.eos_token_id, rec.pad_id, min_new_tokens, controls,
                )
            for i, text in zip(index, decode_until_eos(tokenizer, out.tokens, eos_ids)):
                texts[i] = text
    return texts
