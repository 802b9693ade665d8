"""A ChatBackend for tests that answers from a script instead of a model.

Answers come from a queue (in call order) or from a function of the request; every request it
receives is recorded, so tests can check what the code under test asked.
"""
from __future__ import annotations

from typing import Callable, Sequence

from pipeline.llm.chat import ChatRequest, ChatResponse


class ScriptedBackend:
    def __init__(self, answers: Sequence[str] | Callable[[ChatRequest], str], model_name: str = "scripted"):
        self.model_name = model_name
        self._answer = answers if callable(answers) else None
        self._queue = [] if callable(answers) else list(answers)
        self.requests: list[ChatRequest] = []

    def complete(self, requests: Sequence[ChatRequest]) -> list[ChatResponse]:
        responses = []
        for request in requests:
            self.requests.append(request)
            if self._answer is not None:
                text = self._answer(request)
            elif self._queue:
                text = self._queue.pop(0)
            else:
                raise AssertionError("scripted backend: no answer left for this request")
            tokens_in = sum(len(m.content.split()) for m in request.messages)
            responses.append(ChatResponse(text=text, tokens_in=tokens_in, tokens_out=len(text.split())))
        return responses


def cached(backend: ScriptedBackend, directory) -> "CachedChat":
    """`backend` behind a real CachedChat whose cache lives in `directory` (a test's tmp_path)."""
    from pipeline.llm.cache import CachedChat

    return CachedChat(backend, directory / "responses.sqlite")
