"""Text-overlap metrics against values computed by hand, and the Porter stemmer on Porter's examples."""
import math

import pytest

from pipeline.explain.porter import porter_stem
from pipeline.explain.text_metrics import (
    corpus_bleu, meteor, overlap_metrics, rouge_l, sentence_bleu, tokenize,
)

CAND = "The cat sat on the mat."
REF = "the cat is on the mat ."


def test_tokenize_lowercases_and_splits_punctuation():
    assert tokenize("Yes. The user's") == ["yes", ".", "the", "user", "'", "s"]


@pytest.mark.parametrize(
    "word, stem",
    [
        ("caresses", "caress"), ("ponies", "poni"), ("cats", "cat"), ("agreed", "agre"),
        ("feed", "feed"), ("plastered", "plaster"), ("motoring", "motor"), ("sing", "sing"),
        ("hopping", "hop"), ("falling", "fall"), ("filing", "file"), ("happy", "happi"),
        ("relational", "relat"), ("conditional", "condit"), ("generalization", "gener"),
        ("hopefulness", "hope"), ("triplicate", "triplic"), ("electrical", "electr"),
        ("adoption", "adopt"), ("allowance", "allow"), ("rate", "rate"), ("cease", "ceas"),
        ("controll", "control"), ("running", "run"), ("movies", "movi"), ("sensibiliti", "sensibl"),
    ],
)
def test_porter_stem_matches_the_paper(word, stem):
    assert porter_stem(word) == stem


def test_identical_and_disjoint_texts():
    assert sentence_bleu(REF, REF) == pytest.approx(1.0)
    assert rouge_l(REF, REF) == pytest.approx(1.0)
    assert sentence_bleu("dogs bark loudly here", REF) == 0.0
    assert rouge_l("dogs bark loudly here", REF) == 0.0
    assert meteor("dogs bark loudly here", REF) == 0.0


def test_sentence_bleu_with_method1_smoothing_by_hand():
    # 7 tokens each; clipped matches: 1-grams 6/7, 2-grams 4/6 (the cat, on the, the mat, mat .),
    # 3-grams 2/5 (on the mat, the mat .), 4-grams 1/4 (on the mat .); equal lengths: BP = 1.
    expected = (6 / 7 * 4 / 6 * 2 / 5 * 1 / 4) ** 0.25
    assert sentence_bleu(CAND, REF) == pytest.approx(expected)
    # Without the final period no 4-gram matches: smoothing gives epsilon / 3 = 0.1 / 3 for it.
    smoothed = (5 / 6 * 3 / 5 * 1 / 4 * (0.1 / 3)) ** 0.25
    assert sentence_bleu("the cat sat on the mat", "the cat is on the mat") == pytest.approx(smoothed)


def test_bleu_brevity_penalty_and_corpus_pooling():
    # Candidate of 4 tokens, reference of 8: all n-grams match, BP = exp(1 - 8/4).
    assert sentence_bleu("a b c d", "a b c d e f g h") == pytest.approx(math.exp(-1))
    # Corpus BLEU pools counts: 1-grams (4+1)/(4+4), 2-grams (3+0)/(3+3), 3-grams 2/4, 4-grams 1/2.
    pooled = (5 / 8 * 3 / 6 * 2 / 4 * 1 / 2) ** 0.25
    assert corpus_bleu(["a b c d", "w x y z"], ["a b c d", "w q r s"]) == pytest.approx(pooled)


def test_rouge_l_from_longest_common_subsequence():
    # LCS of "a b c d e" and "a c e f" = "a c e" (3): P = 3/5, R = 3/4, F = 2PR/(P+R) = 2/3.
    assert rouge_l("a b c d e", "a c e f") == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    assert rouge_l(CAND, REF) == pytest.approx(6 / 7)


def test_meteor_fragmentation_penalty_and_stems():
    # All 4 words match but in 2 chunks: penalty = 0.5 * (2/4)^3 = 0.0625, Fmean = 1.
    assert meteor("red apples taste good", "taste good red apples") == pytest.approx(0.9375)
    # Stems match ("running"/"run", "dogs"/"dog"), one chunk of 2: 1 - 0.5 * (1/2)^3.
    assert meteor("running dogs", "run dog") == pytest.approx(0.9375)
    # Identical 6-token texts: one chunk, so METEOR is 1 - 0.5 / 6^3, not exactly 1.
    assert meteor("the cat is on the mat", "the cat is on the mat") == pytest.approx(1 - 0.5 / 216)


def test_meteor_fmean_weights_recall():
    # 2 of 3 hypothesis words match 2 of 6 reference words in one chunk: P = 2/3, R = 1/3,
    # Fmean = PR / (0.9 P + 0.1 R) = (2/9) / (0.6 + 1/30), penalty 0.5 * (1/2)^3.
    fmean = (2 / 9) / (0.9 * 2 / 3 + 0.1 / 3)
    assert meteor("cat sat x", "cat sat on a red mat") == pytest.approx(fmean * (1 - 0.0625))


def test_overlap_metrics_averages_and_validates():
    scores = overlap_metrics([REF, "dogs bark"], [REF, REF])
    assert scores["rouge_l"] == pytest.approx(0.5)
    assert scores["bleu4_sentence_mean"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="2 candidates but 1 references"):
        overlap_metrics(["a", "b"], ["a"])
