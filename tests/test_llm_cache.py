"""CachedChat: hits cost nothing, answers persist as they arrive, counters add up."""
import shutil
import threading
import time
from types import SimpleNamespace

import pytest
from params_base import section

import pipeline.llm.cache as cache_module
from pipeline.llm.cache import CachedChat, ResponseStore
from pipeline.llm.chat import ChatResponse, LLMError, SamplingParams, chat


class ScriptedBackend:
    """Answers "<prompt>!" with token counts = characters; fails on prompts in `broken`."""

    model_name = "scripted"

    def __init__(self, broken=()):
        self.broken = set(broken)
        self.asked: list[str] = []

    def complete(self, requests, on_answer=None, validate=None):
        answers = []
        for index, request in enumerate(requests):
            prompt = request.messages[-1].content
            self.asked.append(prompt)
            if prompt in self.broken:
                raise LLMError(f"scripted failure on {prompt}")
            answer = ChatResponse(text=prompt + "!", tokens_in=len(prompt), tokens_out=len(prompt) + 1)
            answers.append(answer)
            if on_answer is not None:
                on_answer(index, answer)
        return answers


class BatchOnlyBackend(ScriptedBackend):
    """A backend that knows nothing of on_answer (CachedChat sends it chunks)."""

    def complete(self, requests):
        return super().complete(requests)


def requests_for(*prompts):
    return [chat(("user", p)) for p in prompts]


def test_hits_are_free_duplicates_are_asked_once_and_stats_add_up(tmp_path, monkeypatch):
    ticks = iter([10.0, 10.25, 20.0, 20.5])  # perf_counter at the start and end of each complete()
    monkeypatch.setattr(cache_module, "time", SimpleNamespace(perf_counter=lambda: next(ticks), time=time.time))
    backend = ScriptedBackend()
    cached_chat = CachedChat(backend, tmp_path / "c.sqlite")
    first = cached_chat.complete(requests_for("ab", "cde", "ab"), desc="t")
    assert [r.text for r in first] == ["ab!", "cde!", "ab!"]
    assert backend.asked == ["ab", "cde"]
    second = cached_chat.complete(requests_for("cde", "fg"), desc="t")
    assert [r.cached for r in second] == [True, False]
    stats = cached_chat.stats()
    assert stats["calls"] == 3 and stats["cache_hits"] == 2
    assert stats["hit_rate"] == pytest.approx(2 / 5)
    assert (stats["tokens_in"], stats["tokens_out"]) == (2 + 3 + 2, 3 + 4 + 3)  # hits cost nothing
    assert stats["wall_seconds"] == 0.75  # summed over both complete() calls


def test_answers_before_a_crash_persist_and_the_rerun_asks_only_the_rest(tmp_path):
    path = tmp_path / "c.sqlite"
    with pytest.raises(LLMError, match="scripted failure on c"):
        CachedChat(ScriptedBackend(broken={"c"}), path).complete(requests_for("a", "b", "c", "d"))
    backend = ScriptedBackend()
    rerun = CachedChat(backend, path)
    answers = rerun.complete(requests_for("a", "b", "c", "d"))
    assert [r.text for r in answers] == ["a!", "b!", "c!", "d!"]
    assert backend.asked == ["c", "d"]
    assert [r.cached for r in answers] == [True, True, False, False]


def test_backends_without_on_answer_get_chunks(tmp_path):
    backend = BatchOnlyBackend()
    cached_chat = CachedChat(backend, tmp_path / "c.sqlite")
    prompts = [f"p{i}" for i in range(40)]
    assert [r.text for r in cached_chat.complete(requests_for(*prompts))] == [p + "!" for p in prompts]
    assert cached_chat.stats()["calls"] == 40 and len(cached_chat.store) == 40


def test_key_covers_model_messages_sampling_and_schema():
    base = chat(("user", "x"))
    keys = {
        base.cache_key("m"),
        base.cache_key("other-model"),
        chat(("user", "y")).cache_key("m"),
        chat(("user", "x"), sampling=SamplingParams(max_tokens=5)).cache_key("m"),
        chat(("user", "x"), schema={"type": "object"}).cache_key("m"),
    }
    assert len(keys) == 5
    assert chat(("user", "x")).cache_key("m") == base.cache_key("m")


def test_store_is_safe_with_concurrent_writers(tmp_path):
    store = ResponseStore(tmp_path / "c.sqlite")

    def write(worker: int) -> None:
        for i in range(50):
            store.put(f"{worker}-{i}", "m", ChatResponse(text=str(i), tokens_in=i, tokens_out=1))

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store) == 400
    other_process_view = ResponseStore(tmp_path / "c.sqlite")
    got = other_process_view.get_many(["3-49", "7-0", "missing"])
    assert got["3-49"].text == "49" and got["3-49"].tokens_in == 49 and got["3-49"].cached
    assert "missing" not in got


def test_vllm_backend_without_vllm_says_how_to_install():
    import importlib.util

    from pipeline.llm.backends import build_backend
    from pipeline.llm.config import LLMConfig

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    with pytest.raises(LLMError, match=r"pip install thinkrec\[vllm\]"):
        build_backend(LLMConfig.model_validate(section("llm", backend="vllm", model="Qwen/QwQ-32B")))


def test_model_identity_hashes_file_contents_and_keeps_hub_ids(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights-a")
    (model / "tokenizer.json").write_text("{}")
    (model / ".cache").mkdir()
    (model / ".cache" / "lock").write_text("download bookkeeping")  # hidden: not part of the model
    first = cache_module.model_identity(str(model))
    assert first.startswith("sha256:") and len(first) == len("sha256:") + 64
    copy = tmp_path / "elsewhere"
    shutil.copytree(model, copy, ignore=shutil.ignore_patterns(".cache"))
    assert cache_module.model_identity(str(copy)) == first  # same files, another path: same answers
    (model / ".cache" / "lock").write_text("changed")
    assert cache_module.model_identity(str(model)) == first
    (model / "tokenizer.json").write_text('{"added": 1}')
    assert cache_module.model_identity(str(model)) != first
    assert cache_module.model_identity("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    (empty := tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty: model directory holds no files"):
        cache_module.model_identity(str(empty))


def test_swapped_local_weights_behind_one_path_never_hit_old_answers(tmp_path):
    from rec_tiny import write_tiny_model

    from pipeline.llm.config import LocalConfig
    from pipeline.llm.local_backend import LocalBackend

    path, old, new = tmp_path / "model", tmp_path / "old", tmp_path / "new"
    write_tiny_model(old, seed=0)
    write_tiny_model(new, seed=1)
    request = [chat(("user", "Movie Alpha Story: liked. Will the user like the target?"),
                    sampling=SamplingParams(max_tokens=6))]
    config = LocalConfig(dtype="float32", batch_size=1, threads=1)

    def answer_from(files):
        shutil.rmtree(path, ignore_errors=True)
        shutil.copytree(files, path)
        cached_chat = CachedChat(LocalBackend(str(path), config), tmp_path / "c.sqlite")
        response = cached_chat.complete(request)[0]
        return response, cached_chat.stats()["calls"]

    old_answer, old_calls = answer_from(old)
    new_answer, new_calls = answer_from(new)  # same path, other weights: asked again
    back_answer, back_calls = answer_from(old)  # the first files again: their cached answer
    assert (old_calls, new_calls, back_calls) == (1, 1, 0)
    assert not new_answer.cached and back_answer.cached and back_answer.text == old_answer.text
    assert new_answer.text != old_answer.text  # the seed-1 weights really answer otherwise


def test_vllm_backend_names_local_weights_by_content(tmp_path, monkeypatch):
    import pipeline.llm.vllm_backend as vllm_backend
    from pipeline.llm.config import VLLMConfig

    engines = []
    fake_vllm = SimpleNamespace(LLM=lambda **kwargs: engines.append(kwargs) or kwargs)
    monkeypatch.setattr(vllm_backend, "_import_vllm", lambda: fake_vllm)
    (tmp_path / "config.json").write_text("{}")
    local = vllm_backend.VLLMBackend(str(tmp_path), VLLMConfig(**section("llm.vllm", dtype="bfloat16")))
    assert local.model_name == cache_module.model_identity(str(tmp_path)) + "@bfloat16"
    assert engines[0]["model"] == str(tmp_path)  # the engine still loads from the path
    hub = vllm_backend.VLLMBackend("Qwen/QwQ-32B", VLLMConfig(**section("llm.vllm", dtype="auto")))
    assert hub.model_name == "Qwen/QwQ-32B@auto"
