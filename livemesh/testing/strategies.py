"""Hypothesis strategies for Live API traffic: every message type, as objects or as wire JSON.

Import it as hypothesis's own strategies are imported::

    from hypothesis import given
    from livemesh.testing import strategies as lst

    @given(lst.server_messages())             # any valid server message, one at a time
    def test_decoder(message): ...

    @given(lst.server_streams())              # a session's whole server stream, in order
    def test_handler(stream): ...

Three layers:

* field-derived strategies for any message class (:func:`messages`, :func:`client_messages`,
  :func:`server_messages`), configured by a :class:`MessageStrategies` profile (:data:`WIRE`, the
  default: anything the protocol carries, including enum values and members newer than
  livemesh; :data:`KNOWN`: only what livemesh knows);
* the same as wire JSON (:func:`client_json`, :func:`server_json`, :func:`as_json`), with
  camelCase or snake_case keys and standard or URL-safe base64;
* composite strategies for realistic traffic (:func:`model_turns`, :func:`interrupted_turns`,
  :func:`tool_call_turns`, :func:`cancelled_tool_calls`, :func:`go_aways`,
  :func:`server_streams`; :func:`setups`, :func:`user_turns`, :func:`tool_responses`,
  :func:`client_streams`).

Importing this module imports hypothesis (``pip install 'livemesh[testing]'``); the rest of
livemesh never does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from livemesh.testing.derived import BYTES as BYTES
from livemesh.testing.derived import DURATIONS as DURATIONS
from livemesh.testing.derived import FLOATS as FLOATS
from livemesh.testing.derived import INT32 as INT32
from livemesh.testing.derived import INT64 as INT64
from livemesh.testing.derived import JSON_OBJECTS as JSON_OBJECTS
from livemesh.testing.derived import JSON_VALUES as JSON_VALUES
from livemesh.testing.derived import KNOWN as KNOWN
from livemesh.testing.derived import TEXT as TEXT
from livemesh.testing.derived import WIRE as WIRE
from livemesh.testing.derived import FieldKey as FieldKey
from livemesh.testing.derived import MessageStrategies as MessageStrategies
from livemesh.testing.traffic import SEGMENTS as SEGMENTS
from livemesh.testing.traffic import ResponseModality as ResponseModality
from livemesh.testing.traffic import cancelled_tool_calls as cancelled_tool_calls
from livemesh.testing.traffic import client_streams as client_streams
from livemesh.testing.traffic import go_aways as go_aways
from livemesh.testing.traffic import interrupted_turns as interrupted_turns
from livemesh.testing.traffic import model_turns as model_turns
from livemesh.testing.traffic import server_streams as server_streams
from livemesh.testing.traffic import setups as setups
from livemesh.testing.traffic import tool_call_turns as tool_call_turns
from livemesh.testing.traffic import tool_responses as tool_responses
from livemesh.testing.traffic import user_turns as user_turns
from livemesh.testing.wirejson import Base64Style, Int64Style, KeyStyle, to_json
from livemesh.wire import messages as m

if TYPE_CHECKING:  # imported for real by livemesh.testing.derived, which says what to install if missing
    from hypothesis import strategies as st

__all__ = [
    "BYTES",
    "DURATIONS",
    "FLOATS",
    "INT32",
    "INT64",
    "JSON_OBJECTS",
    "JSON_VALUES",
    "KNOWN",
    "SEGMENTS",
    "TEXT",
    "WIRE",
    "FieldKey",
    "MessageStrategies",
    "ResponseModality",
    "as_json",
    "cancelled_tool_calls",
    "client_json",
    "client_messages",
    "client_streams",
    "go_aways",
    "interrupted_turns",
    "messages",
    "model_turns",
    "server_json",
    "server_messages",
    "server_streams",
    "setups",
    "tool_call_turns",
    "tool_responses",
    "user_turns",
]


def messages(cls: type, *, profile: MessageStrategies = WIRE) -> st.SearchStrategy[Any]:
    """Instances of any message class, every field drawn from its type.

    Args:
        cls: A class of :mod:`livemesh.wire.messages` (``Part``, ``Setup``, ``ServerMessage`` ...).
        profile: Which values to draw (:data:`WIRE` or :data:`KNOWN`, or your own).

    Returns:
        A strategy for instances of ``cls``.
    """
    return profile.messages(cls)


def client_messages(
    kinds: Iterable[str] | None = None, *, profile: MessageStrategies = WIRE
) -> st.SearchStrategy[m.ClientMessage]:
    """Client messages, each setting exactly one of its oneof fields.

    Args:
        kinds: The oneof fields to choose from (``"setup"``, ``"client_content"``,
            ``"realtime_input"``, ``"tool_response"``, ``"context_update"``); all by default.
        profile: Which values to draw.

    Returns:
        A strategy for :class:`~livemesh.wire.messages.ClientMessage`.
    """
    return profile.client_messages(kinds)


def server_messages(
    kinds: Iterable[str] | None = None, *, profile: MessageStrategies = WIRE
) -> st.SearchStrategy[m.ServerMessage]:
    """Server messages, each setting at most one oneof field, with or without usage metadata.

    Args:
        kinds: The oneof fields to choose from (``"setup_complete"``, ``"server_content"``,
            ``"tool_call"``, ``"tool_call_cancellation"``, ``"go_away"``,
            ``"session_resumption_update"``, ``"voice_activity"``,
            ``"voice_activity_detection_signal"``, or ``"usage_metadata"`` for usage alone); all
            by default.
        profile: Which values to draw.

    Returns:
        A strategy for :class:`~livemesh.wire.messages.ServerMessage`.
    """
    return profile.server_messages(kinds)


def as_json(
    strategy: st.SearchStrategy[Any],
    *,
    keys: KeyStyle = "camel",
    base64: Base64Style = "standard",
    int64: Int64Style = "string",
) -> st.SearchStrategy[dict[str, Any]]:
    """Messages drawn from ``strategy``, as JSON objects spelled the way you ask.

    Args:
        strategy: A strategy for message objects.
        keys: ``"camel"`` (the service's spelling) or ``"snake"`` field names.
        base64: ``"standard"`` (the service's) or ``"urlsafe"`` (google-genai's) bytes.
        int64: ``"string"`` (protobuf's printer) or ``"number"``.

    Returns:
        A strategy for JSON objects (``json.dumps`` one to get a frame).
    """
    return strategy.map(lambda message: to_json(message, keys=keys, base64=base64, int64=int64))


def client_json(
    kinds: Iterable[str] | None = None,
    *,
    keys: KeyStyle = "camel",
    base64: Base64Style = "standard",
    int64: Int64Style = "string",
    profile: MessageStrategies = WIRE,
) -> st.SearchStrategy[dict[str, Any]]:
    """Client messages as wire JSON objects (see :func:`client_messages` and :func:`as_json`).

    Args:
        kinds: The oneof fields to choose from; all by default.
        keys: ``"camel"`` or ``"snake"`` field names.
        base64: ``"standard"`` or ``"urlsafe"`` bytes.
        int64: ``"string"`` or ``"number"``.
        profile: Which values to draw.

    Returns:
        A strategy for JSON objects.
    """
    return as_json(client_messages(kinds, profile=profile), keys=keys, base64=base64, int64=int64)


def server_json(
    kinds: Iterable[str] | None = None,
    *,
    keys: KeyStyle = "camel",
    base64: Base64Style = "standard",
    int64: Int64Style = "string",
    profile: MessageStrategies = WIRE,
) -> st.SearchStrategy[dict[str, Any]]:
    """Server messages as wire JSON objects (see :func:`server_messages` and :func:`as_json`).

    The service writes camelCase keys; google-genai ignores a snake_case key at the top level of
    a server message, so ``keys="snake"`` is for testing a decoder's tolerance.

    Args:
        kinds: The oneof fields to choose from; all by default.
        keys: ``"camel"`` or ``"snake"`` field names.
        base64: ``"standard"`` or ``"urlsafe"`` bytes.
        int64: ``"string"`` or ``"number"``.
        profile: Which values to draw.

    Returns:
        A strategy for JSON objects.
    """
    return as_json(server_messages(kinds, profile=profile), keys=keys, base64=base64, int64=int64)
