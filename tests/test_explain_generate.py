"""Greedy generation from embeddings matches a step-by-step argmax loop on a tiny random Llama, with and
without the repetition controls."""
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from pipeline.rec.generate import RepetitionControls, decode_until_eos, greedy_generate


def _tiny_llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
    )
    return LlamaForCausalLM(config).eval()


def test_greedy_generate_equals_argmax_loop_with_left_padding():
    lm = _tiny_llama()
    ids = torch.randint(3, 64, (2, 6))
    mask = torch.ones(2, 6, dtype=torch.long)
    mask[1, :2] = 0  # row 1 is left-padded
    embeds = lm.get_input_embeddings()(ids).detach()
    out = greedy_generate(lm, embeds, mask, max_new_tokens=4, eos_token_id=1, pad_token_id=0)
    assert out.tokens.shape[0] == 2 and out.first_logits.shape == (2, 64)
    for row in range(2):
        keep = mask[row].bool()
        current = ids[row, keep].tolist()
        with torch.no_grad():
            first = lm(torch.tensor([current])).logits[0, -1]
            assert torch.allclose(first, out.first_logits[row], atol=1e-4)
            for step in range(out.tokens.shape[1]):
                token = int(lm(torch.tensor([current])).logits[0, -1].argmax())
                assert token == int(out.tokens[row, step])
                if token == 1:
                    break
                current.append(token)


class _Tokens:
    """A tokenizer stand-in that spells ids: decode([5, 6]) -> "t5 t6"."""

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(f"t{i}" for i in ids)


def test_decode_stops_at_first_eos():
    tokens = torch.tensor([[5, 6, 1, 7], [8, 9, 9, 9]])
    assert decode_until_eos(_Tokens(), tokens, {1}) == ["t5 t6", "t8 t9 t9 t9"]


def _controlled_argmax_loop(lm, ids: list[int], steps: int, ngram: int, penalty: float) -> list[int]:
    """Greedy decoding written out: a generated token's logit is divided by `penalty` (multiplied when
    negative), and a token that would repeat an `ngram` of the generated tokens is banned."""
    generated: list[int] = []
    with torch.no_grad():
        for _ in range(steps):
            logits = lm(torch.tensor([ids + generated])).logits[0, -1].clone()
            for token in set(generated):
                logits[token] = logits[token] / penalty if logits[token] > 0 else logits[token] * penalty
            tail = tuple(generated[len(generated) - ngram + 1:]) if ngram > 1 else ()
            for i in range(len(generated) - ngram + 1):
                if tuple(generated[i:i + ngram - 1]) == tail:
                    logits[generated[i + ngram - 1]] = -float("inf")
            generated.append(int(logits.argmax()))
    return generated


def _repeats(row: list[int], n: int) -> bool:
    grams = [tuple(row[i:i + n]) for i in range(len(row) - n + 1)]
    return len(grams) != len(set(grams))


def test_repetition_controls_reach_generate_and_apply_to_generated_tokens_only():
    lm = _tiny_llama()
    ids = torch.randint(3, 64, (2, 6))
    mask = torch.ones(2, 6, dtype=torch.long)
    mask[1, :3] = 0  # row 1 is left-padded by 3: transformers' own repetition_penalty= would skip its first 3 tokens
    embeds = lm.get_input_embeddings()(ids).detach()
    plain = greedy_generate(lm, embeds, mask, max_new_tokens=12, eos_token_id=None, pad_token_id=0)
    assert any(_repeats(row, 2) for row in plain.tokens.tolist())  # the random model loops without controls
    controls = RepetitionControls(no_repeat_ngram_size=2, repetition_penalty=5.0)
    out = greedy_generate(lm, embeds, mask, max_new_tokens=12, eos_token_id=None, pad_token_id=0, controls=controls)
    assert torch.equal(out.first_logits, plain.first_logits)  # the first step's logits stay the model's own
    assert out.tokens.shape == (2, 12)
    for row in range(2):
        expected = _controlled_argmax_loop(lm, ids[row, mask[row].bool()].tolist(), 12, ngram=2, penalty=5.0)
        assert out.tokens[row].tolist() == expected
        assert not _repeats(expected, 2)
    assert out.tokens.tolist() != plain.tokens.tolist()
