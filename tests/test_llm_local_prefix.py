"""The local backend's shared-prefix path on a tiny random Llama: a batch whose prompts share a long
system prompt runs that prefix once, and answers exactly as each prompt alone (float32)."""
from rec_tiny import write_tiny_model

from pipeline.llm.chat import SamplingParams, chat
from pipeline.llm.config import LocalConfig
from pipeline.llm.local_backend import MIN_SHARED_PREFIX, LocalBackend, shared_prefix_length

SYSTEM = "You are a recommender. Answer Yes or No. User. Items rated before, oldest first:"
QUESTIONS = ["Movie Alpha Story: liked", "Movie Bravo Story: not liked. Movie Echo Story: liked",
             "Target Delta", "Will the user like the target? Movie Golf Story, drama comedy action"]


def test_shared_prefix_batch_answers_like_each_prompt_alone(tmp_path):
    config = LocalConfig(dtype="float32", batch_size=8, threads=1)  # the four prompts in one batch
    backend = LocalBackend(str(write_tiny_model(tmp_path / "model")), config)
    sampling = SamplingParams(max_tokens=8, repetition_penalty=1.2)
    requests = [chat(("system", SYSTEM), ("user", q), sampling=sampling) for q in QUESTIONS]
    ids = [backend.tokenizer(backend.render(r), add_special_tokens=False).input_ids for r in requests]
    shared = shared_prefix_length(ids)
    assert shared >= MIN_SHARED_PREFIX and len({len(i) for i in ids}) == len(ids)  # shared, then padded
    assert "past_key_values" in backend._batch_inputs(ids)
    batched = backend.complete(requests)
    alone = [backend.complete([request])[0] for request in requests]
    assert [r.text for r in batched] == [r.text for r in alone]
    assert [r.tokens_out for r in batched] == [r.tokens_out for r in alone]
    assert [r.tokens_in for r in batched] == [len(i) for i in ids]
    assert len({r.text for r in batched}) > 1  # the rows really answer differently


def test_shared_prefix_length_leaves_every_row_a_token():
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 3, 5]]) == 3
    assert shared_prefix_length([[1, 2, 3], [1, 2, 3, 4]]) == 2  # the shorter row keeps its last token
    assert shared_prefix_length([[7, 2], [1, 2]]) == 0
