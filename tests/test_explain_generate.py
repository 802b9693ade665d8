"""Greedy generation from embeddings matches a step-by-step argmax loop on a tiny random Llama."""
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from pipeline.explain.generate import decode_until_eos, greedy_generate


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
