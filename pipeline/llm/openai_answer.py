"""Reading the body of an OpenAI-compatible chat completion, trusting nothing about its shape.

Real servers answer 200 with bodies the API does not describe: truncated JSON, an HTML page from a
proxy, `{"error": ...}`, no or empty `choices`, `message: null`, `content: null`, content that is a
list or a number, usage fields that are not counts. `read_completion` turns each into a
MalformedAnswerError or EmptyAnswerError naming what was wrong (both ValueErrors: the backend asks
again), so no KeyError/TypeError/AttributeError can escape from a body a server made up.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

# Characters of an unreadable body quoted in the error (enough to recognise an HTML page or an error).
EXCERPT = 200


class MalformedAnswerError(ValueError):
    """The server answered 200 with a body that is not a chat completion: worth asking again."""


class EmptyAnswerError(ValueError):
    """The server answered 200 with no choices or no text: worth asking again."""


@dataclass(frozen=True)
class Completion:
    text: str  # "" when the server sent only reasoning (content null)
    reasoning: str | None
    tokens_in: int | None  # None: the server reported no usage
    tokens_out: int | None


def read_completion(body: bytes) -> Completion:
    data = _json_object(body)
    message = _first_message(data)
    text = _optional_string(message, "content")
    # vLLM's reasoning parsers fill `reasoning_content` (older) or `reasoning` (newer).
    reasoning = _optional_string(message, "reasoning_content") or _optional_string(message, "reasoning")
    if not (text or "").strip() and not (reasoning or "").strip():
        raise EmptyAnswerError("answer is empty (choices[0].message.content is "
                               f"{'null' if text is None else 'blank'}, no reasoning)")
    tokens_in, tokens_out = _usage(data)
    return Completion(text=text or "", reasoning=reasoning, tokens_in=tokens_in, tokens_out=tokens_out)


def _json_object(body: bytes) -> dict:
    try:
        data = json.loads(body)
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError
        raise MalformedAnswerError(f"body is not JSON ({err}; {len(body)} bytes: {_excerpt(body)})") from None
    if not isinstance(data, dict):
        raise MalformedAnswerError(f"body is {_kind(data)}, not a JSON object: {_excerpt(body)}")
    return data


def _first_message(data: dict) -> dict:
    if "choices" not in data:
        if "error" in data:  # some proxies report failures with status 200
            raise MalformedAnswerError(f"body is an error, not a completion: {_excerpt(json.dumps(data['error']))}")
        raise MalformedAnswerError(f"body has no 'choices' (keys: {sorted(data)[:10]})")
    choices = data["choices"]
    if not isinstance(choices, list):
        raise MalformedAnswerError(f"'choices' is {_kind(choices)}, not a list")
    if not choices:
        raise EmptyAnswerError("answer has no choices ('choices' is empty)")
    if not isinstance(choices[0], dict):
        raise MalformedAnswerError(f"choices[0] is {_kind(choices[0])}, not an object")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise MalformedAnswerError(f"choices[0].message is {_kind(message)}, not an object")
    return message


def _optional_string(message: dict, field: str) -> str | None:
    value = message.get(field)
    if value is not None and not isinstance(value, str):
        raise MalformedAnswerError(f"choices[0].message.{field} is {_kind(value)}, not a string")
    return value


def _usage(data: dict) -> tuple[int | None, int | None]:
    """(prompt_tokens, completion_tokens); None where the server left a count out. A count that is
    there but not a non-negative integer makes the body malformed: the metrics would be wrong."""
    usage = data.get("usage")
    if usage is None:
        return None, None
    if not isinstance(usage, dict):
        raise MalformedAnswerError(f"'usage' is {_kind(usage)}, not an object")
    counts = []
    for field in ("prompt_tokens", "completion_tokens"):
        value = usage.get(field)
        if value is not None and (type(value) is not int or value < 0):
            raise MalformedAnswerError(f"usage.{field} is {value!r:.40}, not a token count")
        counts.append(value)
    return counts[0], counts[1]


def _kind(value) -> str:
    if value is None:
        return "null"
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


def _excerpt(body: bytes | str) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return repr(text[:EXCERPT]) + ("..." if len(text) > EXCERPT else "")
