"""The official SDK (google-genai) reads what livemesh.testing draws, and reads it the same.

Server traffic goes through the SDK's own receive path (``AsyncSession._receive``: its
``_LiveServerMessage_from_mldev`` converter, then ``LiveServerMessage._from_response``); client
traffic through its ``LiveClientMessage`` type. Each SDK object, dumped by alias, must hold the
content livemesh.testing's reference JSON holds, spelled as pydantic spells it (URL-safe base64,
int64 as numbers).
"""

from __future__ import annotations

import warnings
from typing import Any

import orjson
import pytest
from google.genai import _live_converters, types
from hypothesis import given
from hypothesis import strategies as st

from livemesh import wire
from livemesh.testing import strategies as lst
from livemesh.testing import to_json
from livemesh.testing._fields import fields_of, message_classes
from livemesh.testing.derived import TEXT
from livemesh.wire import messages as m
from tests.testing.budget import PURE

# The SDK warns (and keeps the value) when an enum value is new to it. Where the message classes
# name each enum field's constants class, known_enums draws only known values, so a warning is a
# failure; where they do not, known_enums has nothing to go by and the warnings are expected.
ENUMS_NAMED = any(field.enum is not None for cls in message_classes() for field in fields_of(cls))
pytestmark = pytest.mark.filterwarnings(
    f"{'error' if ENUMS_NAMED else 'ignore'}:.* is not a valid :UserWarning"
)

# Where livemesh keeps free-form JSON but the SDK types the object, draw that type's shape.
SDK_SERVER = lst.MessageStrategies(
    known_enums=True,
    overrides={
        (m.ServerContent, "grounding_metadata"): st.one_of(
            st.just({}), st.fixed_dictionaries({"webSearchQueries": st.lists(TEXT, min_size=1, max_size=2)})
        ),
        (m.ServerContent, "url_context_metadata"): st.one_of(
            st.just({}),
            st.fixed_dictionaries(
                {
                    "urlMetadata": st.lists(
                        st.fixed_dictionaries({"retrievedUrl": TEXT}), min_size=1, max_size=2
                    )
                }
            ),
        ),
    },
)


def _canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _as_pydantic_spells(message: Any) -> dict[str, Any]:
    return to_json(message, base64="urlsafe", int64="number")


def _sdk_dump(obj: Any) -> dict[str, Any]:
    dump: dict[str, Any] = obj.model_dump(mode="json", by_alias=True, exclude_none=True)
    activity = dump.get("voiceActivity")
    if activity is not None and "voiceActivityType" in activity:
        # The one field whose wire name is not the camelCase of its SDK name ("type" on the wire).
        activity["type"] = activity.pop("voiceActivityType")
    return dump


def _sdk_receives(message: m.ServerMessage) -> types.LiveServerMessage:
    """What the SDK's receive loop makes of a frame livemesh encodes (live.py, Gemini API)."""
    response = _live_converters._LiveServerMessage_from_mldev(orjson.loads(wire.encode_server(message)))
    return types.LiveServerMessage._from_response(
        response=response, kwargs=types.LiveServerMessage().model_dump()
    )


@PURE
@given(lst.server_messages(profile=SDK_SERVER))
def test_the_sdk_reads_every_server_message(message: m.ServerMessage) -> None:
    assert _canonical(_sdk_dump(_sdk_receives(message))) == _canonical(_as_pydantic_spells(message))


@PURE
@given(lst.server_streams())
def test_the_sdk_reads_whole_server_streams(stream: list[m.ServerMessage]) -> None:
    for message in stream:
        received = _sdk_receives(message)
        assert _canonical(_sdk_dump(received)) == _canonical(_as_pydantic_spells(message))
        if message.server_content is not None and message.server_content.model_turn is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # .text warns about non-text parts
                assert (received.text or "") == wire.extract_text(message)
                assert (received.data or b"") == b"".join(wire.extract_audio(message))


def _without_realtime_input_config(frame: dict[str, Any]) -> dict[str, Any]:
    """The SDK's connect() sends ``setup.realtimeInputConfig`` (from LiveConnectConfig), but its
    ``LiveClientSetup`` type has no such field: leave it out of what the type is asked to read."""
    setup = frame.get("setup")
    if setup is not None and "realtimeInputConfig" in setup:
        frame = {**frame, "setup": {k: v for k, v in setup.items() if k != "realtimeInputConfig"}}
    return frame


@PURE
@given(lst.client_streams())
def test_the_sdk_types_read_whole_client_streams(stream: list[m.ClientMessage]) -> None:
    for message in stream:
        frame = _without_realtime_input_config(orjson.loads(wire.encode_client(message)))
        sdk_message = types.LiveClientMessage.model_validate_json(orjson.dumps(frame))
        expected = _without_realtime_input_config(_as_pydantic_spells(message))
        assert _canonical(_sdk_dump(sdk_message)) == _canonical(expected)
