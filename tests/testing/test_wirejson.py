"""The strategies' messages round-trip through the codec, in every spelling real peers use.

``to_json`` is a second writer of wire JSON, independent of :mod:`livemesh.wire.codec`: the codec
must write what it writes (camelCase, standard base64, int64 strings) and read every spelling it
offers back into the same message.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from livemesh import wire
from livemesh.testing import duration_text, to_json
from livemesh.testing import strategies as lst
from livemesh.testing._fields import message_classes
from livemesh.wire import messages as m
from tests.testing.budget import PER_CLASS, PURE

STYLES = st.tuples(
    st.sampled_from(["camel", "snake"]),
    st.sampled_from(["standard", "urlsafe"]),
    st.sampled_from(["string", "number"]),
)


def _canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


@PURE
@given(lst.server_messages(), STYLES)
def test_server_messages_decode_from_every_spelling(
    message: m.ServerMessage, style: tuple[Any, Any, Any]
) -> None:
    keys, b64, int64 = style
    frame = orjson.dumps(to_json(message, keys=keys, base64=b64, int64=int64))
    assert wire.decode_server(frame) == message
    assert wire.decode_server(frame.decode()) == message  # a text frame


@PURE
@given(lst.client_messages(), STYLES)
def test_client_messages_decode_from_every_spelling(
    message: m.ClientMessage, style: tuple[Any, Any, Any]
) -> None:
    keys, b64, int64 = style
    frame = orjson.dumps(to_json(message, keys=keys, base64=b64, int64=int64))
    assert wire.decode_client(frame) == message


@PURE
@given(lst.server_messages(), lst.client_messages())
def test_the_codec_writes_what_the_reference_writes(server: m.ServerMessage, client: m.ClientMessage) -> None:
    assert _canonical(orjson.loads(wire.encode_server(server))) == _canonical(to_json(server))
    assert _canonical(orjson.loads(wire.encode_client(client))) == _canonical(to_json(client))


@pytest.mark.parametrize("cls", message_classes(), ids=lambda c: c.__name__)
@PER_CLASS
@given(data=st.data())
def test_every_class_round_trips_through_the_converter(cls: type, data: st.DataObject) -> None:
    value = data.draw(lst.messages(cls))
    json = orjson.loads(orjson.dumps(to_json(value, keys=data.draw(st.sampled_from(["camel", "snake"])))))
    assert wire.converter.structure(json, cls) == value


@PURE
@given(lst.server_json(keys="snake", base64="urlsafe"))
def test_json_strategies_spell_as_asked(frame: dict[str, Any]) -> None:
    message = wire.decode_server(orjson.dumps(frame))
    assert frame == to_json(message, keys="snake", base64="urlsafe")
    assert not any(c.isupper() for key in frame for c in key if not key.startswith("zz"))


@PURE
@given(lst.client_json(["realtime_input"], base64="urlsafe"))
def test_client_json_strategies_spell_base64_as_asked(frame: dict[str, Any]) -> None:
    audio = frame["realtimeInput"].get("audio")
    if audio is not None and "data" in audio:
        assert "+" not in audio["data"] and "/" not in audio["data"]
        assert wire.decode_client(orjson.dumps(frame)).realtime_input.audio.data == base64.urlsafe_b64decode(  # type: ignore[union-attr]
            audio["data"]
        )


def test_to_json_spells_one_message_as_documented() -> None:
    message = m.ServerMessage(
        server_content=m.ServerContent(
            model_turn=m.Content(parts=[m.Part(inline_data=m.Blob(data=b"\xfb\xff", mime_type="audio/pcm"))]),
            turn_complete=True,
        ),
        go_away=None,
        session_resumption_update=None,
    )
    assert to_json(message) == {
        "serverContent": {
            "modelTurn": {"parts": [{"inlineData": {"data": "+/8=", "mimeType": "audio/pcm"}}]},
            "turnComplete": True,
        }
    }
    assert to_json(message, keys="snake", base64="urlsafe") == {
        "server_content": {
            "model_turn": {"parts": [{"inline_data": {"data": "-_8=", "mime_type": "audio/pcm"}}]},
            "turn_complete": True,
        }
    }
    update = m.ServerMessage(
        session_resumption_update=m.SessionResumptionUpdate(last_consumed_client_message_index=m.Int64(7))
    )
    assert to_json(update) == {"sessionResumptionUpdate": {"lastConsumedClientMessageIndex": "7"}}
    assert to_json(update, int64="number") == {
        "sessionResumptionUpdate": {"lastConsumedClientMessageIndex": 7}
    }
    assert to_json(m.ServerMessage(go_away=m.GoAway(time_left=m.Duration(9.5)))) == {
        "goAway": {"timeLeft": "9.5s"}
    }
    with pytest.raises(TypeError):
        to_json({"goAway": {}})


@pytest.mark.parametrize(
    ("nanos", "text"),
    [(0, "0s"), (50 * 10**9, "50s"), (9_500_000_000, "9.5s"), (1, "0.000000001s"), (-1_500_000_000, "-1.5s")],
)
def test_duration_text(nanos: int, text: str) -> None:
    assert duration_text(nanos) == text
    assert wire.parse_duration(text) == nanos / 1e9
