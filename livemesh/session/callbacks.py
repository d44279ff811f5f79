"""Seed-parity callbacks: optional functions the session calls as events arrive.

The idiomatic way to consume a session is ``async for message in session``; callbacks exist so
code ported from the seed's ``Session.start_link(on_message: ..., on_tool_call: ...)`` keeps its
shape. Each callback may be a plain function or an ``async def``. They run inside the session's
reader task, in arrival order, so a slow callback slows the session (do heavy work elsewhere).

A callback that raises does not kill the session: the error is logged, counted in
``metrics.callback_errors`` and passed to ``on_error`` (unless ``on_error`` itself raised).
``on_tool_call`` is special: it runs in the tool task, and whatever it returns (a list of
``FunctionResponse`` or dicts with ``id``/``name``/``response``, or ``None``) is sent as the
tool response, like the seed's ``{:tool_response, responses}``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeAlias

import attrs

from livemesh.errors import ConfigError

__all__ = ["CALLBACK_NAMES", "Callback", "Callbacks", "call_callback"]

Callback: TypeAlias = Callable[..., Any | Awaitable[Any]]
"""A sync or async function of one argument (``on_transcription`` gets two)."""


def _callable_or_none(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not callable(value):
        raise ConfigError(f"{attribute.name} must be callable, not {type(value).__name__}")


_field = attrs.field(default=None, validator=_callable_or_none)


@attrs.frozen(kw_only=True)
class Callbacks:
    """What each callback receives:

    * ``on_message(ServerMessage)``: every server message (after the ones below).
    * ``on_tool_call(ToolCall)``: calls not handled by a session-run tool; may return responses.
    * ``on_tool_call_cancellation(list[str])``: ids the server cancelled.
    * ``on_transcription(direction, Transcription)``: ``"input"`` (user) or ``"output"`` (model).
    * ``on_voice_activity(VoiceActivity)``.
    * ``on_session_resumption(SessionResumptionUpdate)``: every update (store resumable handles).
    * ``on_go_away(GoAway)``: the service will close this connection (the session moves itself).
    * ``on_error(Exception)``: a callback or tool failed, or the session is failing.
    * ``on_close(SessionError | None)``: the session ended (``None`` = closed normally).
    """

    on_message: Callback | None = _field
    on_tool_call: Callback | None = _field
    on_tool_call_cancellation: Callback | None = _field
    on_transcription: Callback | None = _field
    on_voice_activity: Callback | None = _field
    on_session_resumption: Callback | None = _field
    on_go_away: Callback | None = _field
    on_error: Callback | None = _field
    on_close: Callback | None = _field

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Callbacks:
        unknown = set(data) - set(CALLBACK_NAMES)
        if unknown:
            raise ConfigError(f"unknown callback(s): {sorted(unknown)}")
        return cls(**data)


CALLBACK_NAMES: tuple[str, ...] = tuple(a.name for a in attrs.fields(Callbacks))


async def call_callback(
    fn: Callback | None, *args: Any, log: logging.LoggerAdapter[Any] | logging.Logger
) -> Any:
    """Call ``fn(*args)``, awaiting it if it is async; return its result. Exceptions propagate
    (callers decide: the reader logs and continues, the tool task turns them into responses)."""
    if fn is None:
        return None
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result
