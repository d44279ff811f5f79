"""The names livemesh exports: metrics, attributes, span names and the closed sets of values.

Everything a dashboard or an alert is written against lives here, in one place, with no
OpenTelemetry import: the hooks, the exporter wiring, the tests and the documentation all read
these constants. Where the OpenTelemetry GenAI semantic conventions define a name (the metrics in
https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-metrics/, the token metrics and the draft
realtime spans of https://github.com/open-telemetry/semantic-conventions-genai), it is used as
written there; everything else is under ``livemesh.*``.

Attribute values that come from outside livemesh (a move's reason, a tool's outcome, a close code)
are mapped onto the closed sets below: an attribute never carries free text, so it can carry
neither a secret nor what a user said, and a label's cardinality stays bounded.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "MOVE_REASONS",
    "TOOL_OUTCOMES",
    "error_kind",
    "modality",
    "move_reason",
    "provider",
    "tool_outcome",
]

# ----------------------------------------------------------------------------- instrumentation scope

SCOPE: Final = "livemesh"

# ----------------------------------------------------------------------------- GenAI metrics
TOKEN_USAGE: Final = "gen_ai.client.token.usage"
OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"
USAGE_INPUT_TOKENS: Final = "gen_ai.client.inference.usage.input_tokens"
USAGE_OUTPUT_TOKENS: Final = "gen_ai.client.inference.usage.output_tokens"

# Bucket boundaries the conventions ask for (token counts; seconds).
TOKEN_BUCKETS: Final = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
DURATION_BUCKETS: Final = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)

# ----------------------------------------------------------------------------- livemesh metrics
SESSIONS_ACTIVE: Final = "livemesh.sessions.active"
SESSIONS_QUEUED: Final = "livemesh.sessions.queued"
SESSION_CLOSES: Final = "livemesh.session.closes"
CONNECTIONS: Final = "livemesh.connections"
CONNECTION_CLOSES: Final = "livemesh.connection.closes"
GO_AWAYS: Final = "livemesh.go_aways"
MOVES: Final = "livemesh.moves"
MOVE_STALL: Final = "livemesh.move.stall"
RECONNECTS: Final = "livemesh.reconnects"
REPLAYS: Final = "livemesh.replay.messages"
TOOL_DURATION: Final = "livemesh.tool.duration"
QUOTA_BACKOFFS: Final = "livemesh.quota.backoffs"
TRAFFIC_BYTES: Final = "livemesh.traffic.bytes"
TRAFFIC_MESSAGES: Final = "livemesh.traffic.messages"

# Input stalls and tool calls: from a few milliseconds to minutes.
STALL_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# ----------------------------------------------------------------------------- attributes
OPERATION_NAME: Final = "gen_ai.operation.name"
PROVIDER_NAME: Final = "gen_ai.provider.name"
REQUEST_MODEL: Final = "gen_ai.request.model"
TOKEN_TYPE: Final = "gen_ai.token.type"
TOKEN_MODALITY: Final = "gen_ai.token.modality"
REALTIME_SESSION_ID: Final = "gen_ai.realtime_session.id"
FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
USAGE_INPUT: Final = "gen_ai.usage.input_tokens"
USAGE_OUTPUT: Final = "gen_ai.usage.output_tokens"
TOOL_NAME: Final = "gen_ai.tool.name"
TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
TOOL_TYPE: Final = "gen_ai.tool.type"
ERROR_TYPE: Final = "error.type"
IO_DIRECTION: Final = "network.io.direction"

ENGINE: Final = "livemesh.engine"
SESSION_ID: Final = "livemesh.session.id"
CONNECTION_INDEX: Final = "livemesh.connection.index"
RESUMED: Final = "livemesh.connection.resumed"
CLOSE_CODE: Final = "livemesh.close.code"
MOVE_REASON: Final = "livemesh.move.reason"
REPLAY_KIND: Final = "livemesh.replay.kind"
TOOL_OUTCOME: Final = "livemesh.tool.outcome"
TIME_LEFT: Final = "livemesh.go_away.time_left"
STALL: Final = "livemesh.move.stall"

# ----------------------------------------------------------------------------- spans and events
OP_REALTIME: Final = "realtime_inference"
OP_TOOL: Final = "execute_tool"
SPAN_SESSION: Final = "livemesh.session"
SPAN_CONNECTION: Final = "livemesh.connection"
EVENT_GO_AWAY: Final = "livemesh.go_away"
EVENT_MOVE_STARTED: Final = "livemesh.move.started"
EVENT_MOVE_DONE: Final = "livemesh.move.done"
EVENT_REPLAY: Final = "livemesh.replay"

# ----------------------------------------------------------------------------- closed value sets

MOVE_REASONS: Final = ("goAway", "age", "budget", "requested", "drop")
"""Why a session moved to a fresh connection (``livemesh.move.reason``)."""

_MOVE_REASON = {
    "goaway": "goAway",
    "go_away": "goAway",
    "age": "age",
    "timer": "age",
    "connection_age": "age",
    "budget": "budget",
    "session_budget": "budget",
    "drop": "drop",
    "lost": "drop",
}


def move_reason(reason: str | None) -> str:
    """The reason a move is counted under: one of :data:`MOVE_REASONS`.

    Anything not known to be the service's or the planner's own reason (a string a user passed to
    ``rotate()``, the pool's "pool") is ``"requested"``: a caller's text never becomes a label.

    Args:
        reason: the reason as the session or the pool named it (``"go_away"``, ``"timer"``, ...).

    Returns:
        ``"goAway"``, ``"age"``, ``"budget"``, ``"requested"`` or ``"drop"``.
    """
    if reason is None:
        return "requested"
    return _MOVE_REASON.get(reason.lower(), "requested")


TOOL_OUTCOMES: Final = ("ok", "error", "cancelled")
"""How a tool call ended (``livemesh.tool.outcome``)."""


def tool_outcome(outcome: str) -> str:
    """``outcome`` if it is one of :data:`TOOL_OUTCOMES`, else ``"error"``.

    Args:
        outcome: how the call ended as the caller named it.

    Returns:
        ``"ok"``, ``"error"`` or ``"cancelled"``.
    """
    return outcome if outcome in TOOL_OUTCOMES else "error"


REPLAY_KINDS: Final = ("replayed", "restored", "ambiguous", "skipped")
"""What a resumed connection did with the input it could not prove the server had
(``livemesh.replay.kind``): resent it, restored it as history, resent it although the resumed
context may hold it already, or left it out as most likely covered."""

_PROVIDERS = {"gemini": "gcp.gemini", "vertex": "gcp.vertex_ai"}


def provider(api: str) -> str:
    """``gen_ai.provider.name`` for an API flavour: ``gcp.gemini`` (the Gemini Developer API, also
    the emulator) or ``gcp.vertex_ai``; ``gcp.gen_ai`` (any Google endpoint) for anything else.

    Args:
        api: ``"gemini"`` or ``"vertex"``.

    Returns:
        The provider name the GenAI conventions define for it.
    """
    return _PROVIDERS.get(api, "gcp.gen_ai")


_MODALITIES = {"TEXT": "text", "AUDIO": "audio", "IMAGE": "image", "VIDEO": "video", "DOCUMENT": "document"}


def modality(value: str | None) -> str:
    """``gen_ai.token.modality`` for the API's ``MediaModality``: ``text``, ``audio``, ``image``,
    ``video``, ``document``, or ``unknown``.

    Args:
        value: the modality as the API names it (``"AUDIO"``), or None.

    Returns:
        The lower-case value the conventions use, ``"unknown"`` when not one of the API's.
    """
    return _MODALITIES.get(value or "", "unknown")


def error_kind(error: BaseException) -> str:
    """``error.type`` for an exception: its class name, never its message (which may quote what
    the server or the user sent).

    Args:
        error: the exception a session, connection or tool call ended with.

    Returns:
        The exception's class name, e.g. ``"SetupRejectedError"``.
    """
    return type(error).__name__
