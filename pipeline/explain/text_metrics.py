"""BLEU-4, ROUGE-L and METEOR between generated explanations and one reference each.

All three work on the same tokens: lower-cased words and single punctuation marks
(`tokenize`). Written here because nltk / rouge-score are not dependencies of the project.

- BLEU-4 (Papineni et al. 2002): geometric mean of clipped 1..4-gram precisions times the
  brevity penalty. Smoothing = Chen & Cherry (2014) method 1: an n-gram order with zero matches
  gets precision epsilon / (candidate n-grams), epsilon = 0.1 (nltk's `method1`); no unigram
  match at all scores 0.
- ROUGE-L (Lin 2004): longest common subsequence; F = 2PR / (P + R) (beta = 1, as rouge-score).
- METEOR (Banerjee & Lavie 2005): one-to-one unigram alignment, exact matches first, then Porter
  stems; Fmean = PR / (alpha P + (1 - alpha) R); penalty = gamma (chunks / matches)^beta; score =
  Fmean (1 - penalty), alpha = 0.9, beta = 3, gamma = 0.5. WordNet synonym matching is left out
  (no WordNet offline), so scores are at or below METEOR with synonyms.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Sequence

from pipeline.explain.porter import porter_stem

_TOKEN = re.compile(r"\w+|[^\w\s]")
BLEU_EPSILON = 0.1  # Chen & Cherry method 1
METEOR_ALPHA, METEOR_BETA, METEOR_GAMMA = 0.9, 3.0, 0.5


def tokenize(text: str) -> list[str]:
    """Lower-cased words and single punctuation marks: "Yes. It's" -> [yes, ., it, ', s]."""
    return _TOKEN.findall(text.lower())


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _bleu_counts(candidate: list[str], reference: list[str], max_n: int) -> list[tuple[int, int]]:
    """(clipped matches, candidate n-grams) for n = 1..max_n."""
    counts = []
    for n in range(1, max_n + 1):
        cand, ref = _ngrams(candidate, n), _ngrams(reference, n)
        matches = sum(min(count, ref[gram]) for gram, count in cand.items())
        counts.append((matches, max(len(candidate) - n + 1, 0)))
    return counts


def _bleu_from_counts(counts: list[tuple[int, int]], cand_len: int, ref_len: int) -> float:
    if cand_len == 0 or counts[0][0] == 0:
        return 0.0  # no unigram in common: 0, not a smoothed positive (as nltk)
    log_precision = 0.0
    for matches, total in counts:
        if total == 0:
            return 0.0  # candidate shorter than n: no n-grams to score
        precision = matches / total if matches > 0 else BLEU_EPSILON / total
        log_precision += math.log(precision)
    brevity = 1.0 if cand_len > ref_len else math.exp(1.0 - ref_len / cand_len)
    return brevity * math.exp(log_precision / len(counts))


def sentence_bleu(candidate: str, reference: str, max_n: int = 4) -> float:
    """Smoothed BLEU-max_n of one candidate against one reference, in [0, 1]."""
    cand, ref = tokenize(candidate), tokenize(reference)
    return _bleu_from_counts(_bleu_counts(cand, ref, max_n), len(cand), len(ref))


def corpus_bleu(candidates: Sequence[str], references: Sequence[str], max_n: int = 4) -> float:
    """Corpus BLEU: n-gram matches and lengths summed over all pairs before the ratio."""
    _check_pairs(candidates, references)
    totals = [[0, 0] for _ in range(max_n)]
    cand_len = ref_len = 0
    for candidate, reference in zip(candidates, references):
        cand, ref = tokenize(candidate), tokenize(reference)
        cand_len, ref_len = cand_len + len(cand), ref_len + len(ref)
        for total, (matches, count) in zip(totals, _bleu_counts(cand, ref, max_n)):
            total[0] += matches
            total[1] += count
    return _bleu_from_counts([tuple(total) for total in totals], cand_len, ref_len)


def _lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b):
            current.append(previous[j] + 1 if token == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 from the longest common subsequence of the two token lists."""
    cand, ref = tokenize(candidate), tokenize(reference)
    lcs = _lcs_length(cand, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(cand), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def _align(hyp: list[str], ref: list[str], pairs: dict[int, int]) -> None:
    """Add one-to-one matches of equal tokens to `pairs` (hyp index -> ref index), left to right.

    Among equal unmatched reference tokens, prefer the one right after the reference match of the
    previous hypothesis token (keeps chunks whole), else the first one.
    """
    used = set(pairs.values())
    for i, token in enumerate(hyp):
        if i in pairs:
            continue
        free = [j for j, other in enumerate(ref) if other == token and j not in used]
        if not free:
            continue
        follow = pairs.get(i - 1, -2) + 1
        j = follow if follow in free else free[0]
        pairs[i] = j
        used.add(j)


def _chunks(pairs: dict[int, int]) -> int:
    """Runs of matches adjacent and in the same order in both hypothesis and reference."""
    chunks, last = 0, None
    for i in sorted(pairs):
        if last is None or i != last[0] + 1 or pairs[i] != last[1] + 1:
            chunks += 1
        last = (i, pairs[i])
    return chunks


def meteor(candidate: str, reference: str) -> float:
    """METEOR (exact + Porter-stem stages, no synonyms) of one candidate against one reference."""
    hyp, ref = tokenize(candidate), tokenize(reference)
    pairs: dict[int, int] = {}
    _align(hyp, ref, pairs)
    _align([porter_stem(t) for t in hyp], [porter_stem(t) for t in ref], pairs)
    matches = len(pairs)
    if matches == 0:
        return 0.0
    precision, recall = matches / len(hyp), matches / len(ref)
    fmean = precision * recall / (METEOR_ALPHA * precision + (1 - METEOR_ALPHA) * recall)
    penalty = METEOR_GAMMA * (_chunks(pairs) / matches) ** METEOR_BETA
    return fmean * (1 - penalty)


def _check_pairs(candidates: Sequence[str], references: Sequence[str]) -> None:
    if len(candidates) != len(references):
        raise ValueError(f"{len(candidates)} candidates but {len(references)} references")
    if not candidates:
        raise ValueError("no candidate/reference pairs to score")


def overlap_metrics(candidates: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Corpus BLEU-4, mean sentence BLEU-4, mean ROUGE-L F and mean METEOR over the pairs."""
    _check_pairs(candidates, references)
    pairs = list(zip(candidates, references))
    n = len(pairs)
    return {
        "bleu4": corpus_bleu(candidates, references),
        "bleu4_sentence_mean": sum(sentence_bleu(c, r) for c, r in pairs) / n,
        "rouge_l": sum(rouge_l(c, r) for c, r in pairs) / n,
        "meteor": sum(meteor(c, r) for c, r in pairs) / n,
    }
