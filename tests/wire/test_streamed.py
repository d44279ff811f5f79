"""Streamed function arguments: pieces assembled into whole calls, bounded, and every malformed
piece a typed error; and mediaChunks rewritten as audio/video messages."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livemesh import wire
from livemesh.emulator import reply
from livemesh.errors import ConfigError, RemoteProtocolError
from livemesh.wire.streamed import parse_json_path


def piece(
    call_id: str | None, *args: wire.PartialArg, more: bool = True, name: str | None = "f"
) -> wire.FunctionCall:
    return wire.FunctionCall(id=call_id, name=name, partial_args=list(args) or None, will_continue=more)


def s(path: str, value: str, more: bool | None = None) -> wire.PartialArg:
    return wire.PartialArg(json_path=path, string_value=value, will_continue=more)


def test_parse_json_path() -> None:
    assert parse_json_path("$.city") == ("city",)
    assert parse_json_path("$.stops[0].name") == ("stops", 0, "name")
    assert parse_json_path("$['a b'][12]['it\\'s']") == ("a b", 12, "it's")
    assert parse_json_path('$["q\\"x"].y') == ('q"x', "y")
    for bad in ("city", "$", "$.*", "$[-1]", "$[1:2]", "$.a[?@.b]", "$.", "$['\\q']"):
        with pytest.raises(RemoteProtocolError):
            parse_json_path(bad)


def test_a_whole_call_passes_through_untouched() -> None:
    calls = wire.StreamedCalls()
    call = wire.FunctionCall(id="1", name="f", args={"x": 1})
    assert calls.feed(call) is call
    assert len(calls) == 0


def test_pieces_become_one_call_with_nested_args() -> None:
    calls = wire.StreamedCalls()
    pieces = [
        piece("7", s("$.city", "Pa", more=True)),
        piece("7", s("$.city", "ris"), name=None),
        piece("7", wire.PartialArg(json_path="$.n", number_value=2.0)),
        piece("7", wire.PartialArg(json_path="$.ratio", number_value=0.5)),
        piece("7", wire.PartialArg(json_path="$.ok", bool_value=False)),
        piece("7", wire.PartialArg(json_path="$.none", null_value=wire.NullValue("NULL_VALUE"))),
        piece("7", wire.PartialArg(json_path="$.stops[0].name", string_value="Lyon")),
        piece("7", wire.PartialArg(json_path="$.stops[1].name", string_value="Nice")),
        piece("7", wire.PartialArg(json_path="$.m[0][1]", number_value=3.0)),
    ]
    assert [calls.feed(p) for p in pieces] == [None] * len(pieces)
    assert len(calls) == 1
    done = calls.feed(piece("7", more=False, name=None))
    assert done == wire.FunctionCall(
        id="7",
        name="f",
        args={
            "city": "Paris",
            "n": 2,
            "ratio": 0.5,
            "ok": False,
            "none": None,
            "stops": [{"name": "Lyon"}, {"name": "Nice"}],
            "m": [[None, 3]],
        },
    )
    assert done is not None and type(done.args["n"]) is int
    assert len(calls) == 0


def test_a_string_piece_without_will_continue_replaces_the_value() -> None:
    calls = wire.StreamedCalls()
    calls.feed(piece("1", s("$.a", "x")))
    calls.feed(piece("1", s("$.a", "y", more=True)))
    done = calls.feed(piece("1", s("$.a", "z"), more=False))
    assert done is not None and done.args == {"a": "yz"}


def test_interleaved_calls_and_a_piece_without_its_id() -> None:
    calls = wire.StreamedCalls()
    tool_call = wire.ToolCall(
        function_calls=[
            piece("a", s("$.x", "1")),
            piece("b", s("$.y", "2")),
            wire.FunctionCall(id="c", name="g"),
        ]
    )
    assert calls.feed_tool_call(tool_call) == [wire.FunctionCall(id="c", name="g")]
    assert [c.id for c in calls.feed_tool_call(wire.ToolCall(function_calls=[piece("b", more=False)]))] == [
        "b"
    ]
    # one call in flight: a piece without an id continues it
    done = calls.feed(piece(None, s("$.z", "3"), more=False, name=None))
    assert done == wire.FunctionCall(id="a", name="f", args={"x": "1", "z": "3"})


def test_args_given_alongside_pieces_are_kept() -> None:
    calls = wire.StreamedCalls()
    calls.feed(wire.FunctionCall(id="1", name="f", args={"a": 1}, will_continue=True))
    done = calls.feed(piece("1", s("$.b", "x"), more=False))
    assert done is not None and done.args == {"a": 1, "b": "x"}


def test_discard_and_clear_forget_calls_in_flight() -> None:
    calls = wire.StreamedCalls()
    calls.feed(piece("1", s("$.a", "x")))
    calls.feed(piece("2", s("$.a", "x")))
    calls.discard(["1", "unknown"])
    assert len(calls) == 1
    calls.clear()
    assert len(calls) == 0


@pytest.mark.parametrize(
    "pieces",
    [
        [piece("1", wire.PartialArg(json_path="$.a"))],  # no value
        [piece("1", wire.PartialArg(string_value="x"))],  # no path
        [piece("1", s("$.a", "x")), piece("1", s("$.a.b", "y"))],  # a string is not an object
        [piece("1", s("$.a", "x")), piece("1", s("$.a[0]", "y"))],  # ... nor a list
        [piece("1", s("$.a[0]", "x")), piece("1", s("$.a.b", "y"))],  # a list is not an object
        [piece("1", s("$[0]", "x"))],  # the args are an object
    ],
)
def test_pieces_that_cannot_be_placed_are_the_servers_fault(pieces: list[wire.FunctionCall]) -> None:
    calls = wire.StreamedCalls()
    with pytest.raises(RemoteProtocolError):
        for p in pieces:
            calls.feed(p)


def test_bounds() -> None:
    calls = wire.StreamedCalls(max_calls=2, max_chars=10)
    calls.feed(piece("1", s("$.a", "12345")))
    calls.feed(piece("2", s("$.a", "x")))
    with pytest.raises(RemoteProtocolError, match="more than 2"):
        calls.feed(piece("3", s("$.a", "x")))
    with pytest.raises(RemoteProtocolError, match="exceed 10"):
        calls.feed(piece("1", s("$.b", "123456")))
    with pytest.raises(RemoteProtocolError, match="exceed 10"):  # a huge index allocates nothing
        calls.feed(piece("2", wire.PartialArg(json_path="$.c[1000000000]", bool_value=True)))


JSON_LEAF = st.none() | st.booleans() | st.integers(-(2**52), 2**52) | st.text(max_size=8)
KEY = st.text(st.characters(codec="utf-8", exclude_characters=".[]'\"*"), min_size=1, max_size=5)
ARGS = st.dictionaries(
    KEY,
    st.recursive(
        JSON_LEAF,
        lambda inner: (
            st.lists(inner, min_size=1, max_size=3) | st.dictionaries(KEY, inner, min_size=1, max_size=3)
        ),
        max_leaves=10,
    ),
    max_size=5,
)


@given(ARGS)
def test_the_emulators_stream_of_any_args_assembles_back_to_them(args: dict[str, Any]) -> None:
    calls = wire.StreamedCalls()
    pieces = reply.streamed_call("id-1", "f", args)
    assert [calls.feed(p) for p in pieces[:-1]] == [None] * (len(pieces) - 1)
    assert calls.feed(pieces[-1]) == wire.FunctionCall(id="id-1", name="f", args=args)
    assert wire.assemble_args(a for p in pieces for a in p.partial_args or ()) == args


def test_split_media_chunks() -> None:
    audio = wire.Blob(data=b"\x00\x00", mime_type="audio/pcm;rate=16000")
    frame = wire.Blob(data=b"\xff\xd8", mime_type="image/jpeg")
    plain = wire.RealtimeInput(audio=audio)
    assert wire.split_media_chunks(plain) == [plain]
    assert wire.split_media_chunks(wire.RealtimeInput(media_chunks=[audio, frame])) == [
        wire.RealtimeInput(audio=audio),
        wire.RealtimeInput(video=frame),
    ]
    mixed = wire.RealtimeInput(text="hi", media_chunks=[frame])
    assert wire.split_media_chunks(mixed) == [wire.RealtimeInput(text="hi"), wire.RealtimeInput(video=frame)]
    with pytest.raises(ConfigError, match="media_chunks\\[0\\]"):
        wire.split_media_chunks(
            wire.RealtimeInput(media_chunks=[wire.Blob(data=b"x", mime_type="text/plain")])
        )


def test_response_parts_from_what_a_tool_has_at_hand() -> None:
    blob = wire.Blob(data=b"\xff\xd8", mime_type="image/jpeg")
    file = wire.FileData(file_uri="gs://b/x.pdf", mime_type="application/pdf")
    part = wire.FunctionResponsePart(inline_data=blob)
    assert wire.is_media(blob) and wire.is_media([part, file]) and wire.is_media((blob,))
    assert not wire.is_media([]) and not wire.is_media([blob, 1]) and not wire.is_media({"a": 1})
    assert wire.response_parts(blob) == [part]
    assert wire.response_parts([part, file]) == [part, wire.FunctionResponsePart(file_data=file)]
    from_dicts = wire.response_parts(
        [
            {"inline_data": {"data": b"\xff\xd8", "mime_type": "image/jpeg"}},
            {"fileData": {"fileUri": "gs://b/x.pdf"}},
        ]
    )
    assert from_dicts == [part, wire.FunctionResponsePart(file_data=wire.FileData(file_uri="gs://b/x.pdf"))]
    with pytest.raises(ConfigError, match=r"parts\[0\]\.inline_data\.mime_typ' \(did you mean 'mime_type'"):
        wire.response_parts([{"inline_data": {"data": b"", "mime_typ": "image/png"}}])
    with pytest.raises(ConfigError, match=r"parts\[1\] must be"):
        wire.response_parts([blob, "x"])
    with pytest.raises(ConfigError, match="not a valid FunctionResponsePart"):
        wire.response_parts({"inline_data": {"data": 5}})
