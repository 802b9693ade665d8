"""The trained recommender writes its reasoning for prompts, and that text is scored against the
teacher's gold traces."""
from __future__ import annotations

from typing import Sequence

import pandas as pd
import torch
from tqdm import tqdm

from pipeline.explain.bertscore import BertScorer
from pipeline.explain.generate import RepetitionControls, decode_until_eos, greedy_generate
from pipeline.explain.text_metrics import meteor, overlap_metrics, rouge_l, sentence_bleu
from pipeline.rec.batching import collate, length_buckets
from pipeline.rec.examples import RecExample
from pipeline.rec.fusion import routing
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


def score_explanations(
    candidates: Sequence[str], references: Sequence[str], scorer: BertScorer
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per-row scores (bleu4, rouge_l, meteor, bertscore_f1) and the summary: corpus BLEU-4, the
    means of the others, and n_rows."""
    _, _, f1 = scorer.score(candidates, references)
    pairs = list(zip(candidates, references))
    per_row = pd.DataFrame({
        "bleu4": [sentence_bleu(c, r) for c, r in pairs],
        "rouge_l": [rouge_l(c, r) for c, r in pairs],
        "meteor": [meteor(c, r) for c, r in pairs],
        "bertscore_f1": f1.numpy(),
    })
    summary = overlap_metrics(candidates, references)
    summary.update(bertscore_f1=float(f1.mean()), n_rows=len(pairs))
    return per_row, summary
