"""The recommender's reasoning (pipeline/rec/reasoning.py writes it) scored against the teacher's
gold traces."""
from __future__ import annotations

from typing import Sequence

import pandas as pd

from pipeline.explain.bertscore import BertScorer
from pipeline.explain.text_metrics import meteor, overlap_metrics, rouge_l, sentence_bleu


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
