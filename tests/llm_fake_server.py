"""A fake OpenAI-compatible chat server on 127.0.0.1 that injects faults on demand.

Used by tests/test_llm_openai.py and bench/llm_throughput.py. The answer to a request is
`answers.get(prompt, "echo: " + prompt)` where `prompt` is the last user message. Faults are
queued per prompt (`faults[prompt] = ["429", "500", "timeout", "malformed", "empty", "prose"]`),
consumed one per hit (`faults["*"]`: by whichever prompts arrive first); `always_fail[prompt] =
kind` fails every hit (`always_fail["*"]`: of every prompt). "prose" answers 200 with text that
is not JSON; "leak401" / "leak500" answer that status with an error body that echoes the
request's Authorization header (a server leaking the API key). `error_headers` go with every
injected error (e.g. {"Retry-After": "1"}). The faults in SHAPES answer 200 with a body that is not a
proper completion (no choices, `message: null`, an HTML page...); "dribble" sends a proper answer one
byte at a time, spread over `dribble_seconds`. `hits[prompt]` counts requests and `hit_times[prompt]`
holds their arrival times (time.monotonic()); `answered[prompt]` counts proper answers sent whole
(what a client has paid for); `max_in_flight` is the most served at once.
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _without(field: str):
    return lambda completion: {k: v for k, v in completion.items() if k != field}


def _message_with(**fields):
    def change(completion: dict) -> dict:
        completion["choices"][0]["message"].update(fields)
        return completion
    return change


def _choices(value):
    return lambda completion: {**completion, "choices": value}


# fault -> the body (a JSON-able value, or str for raw text) made from a proper completion
SHAPES = {
    "no_choices": _without("choices"),
    "empty_choices": _choices([]),
    "null_choice": _choices([None]),
    "choices_object": _choices({"0": "x"}),
    "null_message": lambda c: {**c, "choices": [{"index": 0, "message": None, "finish_reason": "stop"}]},
    "null_content": _message_with(content=None),
    "number_content": _message_with(content=42),
    "list_content": _message_with(content=[{"type": "text", "text": "hi"}]),
    "number_reasoning": _message_with(reasoning_content=7),
    "no_usage": _without("usage"),
    "bad_usage": lambda c: {**c, "usage": {"prompt_tokens": "many", "completion_tokens": 1}},
    "error_200": lambda c: {"error": {"message": "model overloaded", "type": "server_error"}},
    "not_object": lambda c: [c],
    "html": lambda c: "<html><body>502 Bad Gateway</body></html>",
}


class FakeChatServer:
    def __init__(self, delay: float = 0.0, hang_seconds: float = 2.0, dribble_seconds: float = 3.0,
                 respond=None):
        self.respond = respond  # prompt -> answer for prompts `answers` lacks (a scripted teacher); None: echo
        self.delay = delay  # seconds before every answer
        self.hang_seconds = hang_seconds  # how long a "timeout" fault stalls
        self.dribble_seconds = dribble_seconds  # how long a "dribble" answer takes to arrive whole
        self.answers: dict[str, str] = {}
        self.reasoning: dict[str, str] = {}
        self.faults: dict[str, list[str]] = {}
        self.always_fail: dict[str, str] = {}
        self.error_headers: dict[str, str] = {}
        self.hits: Counter = Counter()
        self.hit_times: dict[str, list[float]] = {}
        self.answered: Counter = Counter()
        self.bodies: list[dict] = []  # every request body received, in arrival order
        self.headers: list[dict] = []  # lower-cased header names
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}/v1"

    def __enter__(self) -> "FakeChatServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._http.shutdown()
        self._http.server_close()

    def next_fault(self, prompt: str, body: dict, headers: dict) -> str | None:
        with self._lock:
            self.hits[prompt] += 1
            self.hit_times.setdefault(prompt, []).append(time.monotonic())
            self.bodies.append(body)
            self.headers.append(headers)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if prompt in self.always_fail or "*" in self.always_fail:
                return self.always_fail.get(prompt, self.always_fail.get("*"))
            queue = self.faults.get(prompt) or self.faults.get("*")  # "*": faults for any prompt
            return queue.pop(0) if queue else None

    def sent_answer(self, prompt: str) -> None:
        with self._lock:
            self.answered[prompt] += 1

    def done(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def completion(self, body: dict, prompt: str) -> dict:
        default = self.respond(prompt) if self.respond is not None else f"echo: {prompt}"
        message = {"role": "assistant", "content": self.answers.get(prompt, default)}
        if prompt in self.reasoning:
            message["reasoning_content"] = self.reasoning[prompt]
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": len(prompt.split()),
                "completion_tokens": len(message["content"].split()),
                "total_tokens": len(prompt.split()) + len(message["content"].split()),
            },
        }


def _handler_for(server: FakeChatServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            prompt = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
            headers = {name.lower(): value for name, value in self.headers.items()}
            fault = server.next_fault(prompt, body, headers)
            try:
                self._answer(body, prompt, fault)
            finally:
                server.done()

        def _answer(self, body: dict, prompt: str, fault: str | None) -> None:
            time.sleep(server.delay)
            if fault == "timeout":
                time.sleep(server.hang_seconds)
                return self._send(200, json.dumps(server.completion(body, prompt)))
            if fault in ("429", "500", "503", "400", "401"):
                error = {"error": {"message": f"injected {fault}", "type": "fake"}}
                return self._send(int(fault), json.dumps(error), server.error_headers)
            if fault in ("leak401", "leak500"):
                echoed = self.headers.get("Authorization", "")
                error = {"error": {"message": f"Incorrect API key provided: {echoed}", "type": "fake"}}
                return self._send(int(fault[4:]), json.dumps(error), server.error_headers)
            if fault == "malformed":
                return self._send(200, '{"id": "chatcmpl-fake", "choices": [')
            completion = server.completion(body, prompt)
            if fault in SHAPES:
                shaped = SHAPES[fault](completion)
                return self._send(200, shaped if isinstance(shaped, str) else json.dumps(shaped))
            if fault == "dribble":
                return self._dribble(json.dumps(completion).encode(), prompt)
            if fault == "empty":
                completion["choices"][0]["message"]["content"] = ""
            if fault == "prose":
                completion["choices"][0]["message"]["content"] = "Sure! Here is what I think."
            if self._send(200, json.dumps(completion)) and fault is None:
                server.sent_answer(prompt)

        def _dribble(self, data: bytes, prompt: str) -> None:
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                for index in range(len(data)):
                    self.wfile.write(data[index : index + 1])
                    self.wfile.flush()
                    time.sleep(server.dribble_seconds / len(data))
                server.sent_answer(prompt)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up at its deadline

        def _send(self, status: int, text: str, headers: dict[str, str] | None = None) -> bool:
            data = text.encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
                return True
            except (BrokenPipeError, ConnectionResetError):
                return False  # the client gave up (a timeout): nothing to answer

    return Handler
