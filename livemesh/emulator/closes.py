"""Close codes and reason texts exactly as the real service sends them (as quoted in public
threads: kizuna-ai-lab/sokuji#179, livekit/agents#2274, googleapis/js-genai#1236,
google-gemini/cookbook#781, autonomous-ai/autonomous-os#231).

A reason must fit in 123 bytes (the WebSocket limit); :func:`fit_reason` trims on a UTF-8 boundary.
"""

from __future__ import annotations

from typing import Final

INVALID_ARGUMENT: Final = 1007
POLICY: Final = 1008
TOO_BIG: Final = 1009
INTERNAL: Final = 1011

TEXT_INVALID_ARGUMENT: Final = "Request contains an invalid argument."
TEXT_INTERNAL: Final = "Internal error occurred."
TEXT_DEADLINE: Final = "Deadline expired before operation could complete."
TEXT_UNAVAILABLE: Final = "The service is currently unavailable."
TEXT_NOT_FOUND: Final = "Requested entity was not found."
TEXT_ABORTED: Final = "The operation was aborted."
TEXT_UNREGISTERED: Final = "Method doesn't allow unregistered callers (callers without established identity)."
TEXT_BAD_KEY: Final = "API key not valid. Please pass a valid API key."
TEXT_BAD_TOKEN: Final = "Request had invalid authentication credentials."
TEXT_QUOTA: Final = "RESOURCE_EXHAUSTED: You exceeded your current quota (concurrent sessions). Retry later."
TEXT_TOO_BIG: Final = "Message too big."


def fit_reason(text: str, limit: int = 123) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes without splitting a character."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[:limit].decode(errors="ignore")


def context_window_exceeded(tokens: int, window: int) -> str:
    """The 1007 text for a context past its window (no compression). The Live API documents no
    text for this; this is the Gemini API's own wording for a request over the token limit (its
    HTTP 400 INVALID_ARGUMENT), so clients can tell this close from other invalid arguments."""
    return f"The input token count ({tokens}) exceeds the maximum number of tokens allowed ({window})."


def model_not_found(model: str, version: str) -> str:
    """The 1008 text for a model that does not serve bidiGenerateContent."""
    tail = f" is not found for API version {version}, or is not supported for bidiGenerateContent"
    name = f"models/{model}"
    budget = 123 - len(tail.encode())
    if len(name.encode()) > budget:
        name = fit_reason(name, budget)
    return name + tail


def unknown_name(path: str) -> str:
    """The 1007 text for a member the API does not know, as Google's JSON parser words it
    (``Invalid JSON payload received. Unknown name "x" at 'setup.generation_config': Cannot find
    field.``, e.g. google-gemini/gemini-cli#13972). ``path`` is :func:`livemesh.wire.unknown_fields`'
    (camelCase JSON names); the parser names the parent in snake_case."""
    parent, _, name = path.rpartition(".")
    if not parent:
        return f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.'
    at = ".".join(_snake(part) for part in parent.split("."))
    return f"Invalid JSON payload received. Unknown name \"{name}\" at '{at}': Cannot find field."


def _snake(part: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in part)


class Refusal(Exception):
    """Raised inside a connection to close it with ``code``/``reason`` (after the setup was read)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = fit_reason(reason)
