"""BERTScore on the bundled MiniLM: identity, and a paraphrase beats an unrelated sentence."""
import pytest
import torch

from pipeline.explain.bertscore import BertScorer, minilm_dir


@pytest.fixture(scope="module")
def scorer():
    return BertScorer(minilm_dir(), batch_size=2)


def test_identical_text_scores_one(scorer):
    text = "Yes. The user liked most comedies in the history, and this film is a comedy."
    precision, recall, f1 = scorer.score([text], [text])
    assert precision.item() == pytest.approx(1.0, abs=1e-4)
    assert f1.item() == pytest.approx(1.0, abs=1e-4)


def test_paraphrase_beats_unrelated_sentence(scorer):
    reference = "The user enjoys action movies, so they will probably like this thriller."
    candidates = [
        "This person likes action films, so this thriller will likely appeal to them.",
        "Potatoes grow best in loose soil with plenty of rain in spring.",
    ]
    _, _, f1 = scorer.score(candidates, [reference, reference])
    assert f1[0] > f1[1] + 0.2
    assert torch.all((f1 > 0) & (f1 < 1))


def test_batching_does_not_change_scores(scorer):
    candidates = ["a short one", "a much longer sentence about horror movies and their fans"]
    references = ["short", "fans of horror movies"]
    _, _, batched = scorer.score(candidates, references)
    one_by_one = torch.cat([scorer.score([c], [r])[2] for c, r in zip(candidates, references)])
    assert torch.allclose(batched, one_by_one, atol=1e-5)


def test_mismatched_lengths_are_an_error(scorer):
    with pytest.raises(ValueError, match="2 candidates but 1 references"):
        scorer.score(["a", "b"], ["a"])


def test_special_token_strings_in_a_text_are_text(scorer):
    """A "[SEP]" or "[CLS]" inside a reason is embedded as its characters, not as the encoder's own
    tokens (which BERTScore drops), so it cannot hide words from the score; ordinary text keeps its ids."""
    planted = scorer.tokenizer(["great [SEP] film [CLS]"], split_special_tokens=True, return_special_tokens_mask=True)
    assert sum(planted["special_tokens_mask"][0]) == 2  # only the [CLS] ... [SEP] the encoder adds itself
    assert len(scorer._embed(["great [SEP] film [CLS]"])[0]) > len(scorer._embed(["great film"])[0])
    ordinary = "a quiet drama about two brothers"
    assert scorer.tokenizer([ordinary], split_special_tokens=True)["input_ids"] == scorer.tokenizer([ordinary])["input_ids"]
