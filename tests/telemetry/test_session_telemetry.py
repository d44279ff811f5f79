"""A real session against the in-process emulator, recorded by the OpenTelemetry SDK: a rotation,
a goAway, a drop, a tool call and a refused setup each produce exactly the expected points and
spans, and a sentinel key, user text and resumption handle appear in none of them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from livemesh.auth import ApiKey
from livemesh.emulator import EmulatorConfig, open_emulator
from livemesh.emulator.app import Emulator
from livemesh.errors import SetupRejectedError
from livemesh.limits import ServiceLimits
from livemesh.session import open_session
from livemesh.telemetry import names as n
from tests.session.conftest import TEXT_MODEL, make_config
from tests.telemetry.conftest import Recorded, assert_never_recorded, labels

BASE = {
    "gen_ai__provider__name": "gcp.gemini",
    "gen_ai__request__model": TEXT_MODEL,
    "livemesh__engine": "sansio",
}
OP = {**BASE, "gen_ai__operation__name": "realtime_inference"}
del OP["livemesh__engine"]  # the gen_ai.* metrics carry the conventions' attributes only
TURN = f"realtime_inference {TEXT_MODEL}"

# The metrics each kind of event produces (a metric nothing recorded into is absent).
EVERY_SESSION = {n.SESSION_CLOSES, n.SESSIONS_ACTIVE, n.TRAFFIC_BYTES, n.TRAFFIC_MESSAGES}
CONNECTED = {n.CONNECTIONS, n.CONNECTION_CLOSES}
TURNS = {
    n.TOKEN_USAGE,
    n.USAGE_INPUT_TOKENS,
    n.USAGE_OUTPUT_TOKENS,
    n.OPERATION_DURATION,
    n.TIME_TO_FIRST_CHUNK,
}
MOVED = {n.MOVES, n.MOVE_STALL, n.RECONNECTS}


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with open_emulator(EmulatorConfig(resumption_update_interval_s=0.05, limits=ServiceLimits())) as e:
        yield e


def get_stock_price(symbol: str) -> dict[str, Any]:
    """Get the current stock price.

    Args:
        symbol: The ticker, e.g. AAPL.
    """
    return {"price": 178.50, "currency": "USD", "symbol": symbol}


def _connections(recorded: Recorded) -> list[ReadableSpan]:
    spans = [s for s in recorded.spans() if s.name == n.SPAN_CONNECTION]
    return sorted(spans, key=lambda s: (s.attributes or {})[n.CONNECTION_INDEX])


def _child_of(span: ReadableSpan, parent: ReadableSpan) -> bool:
    return span.parent is not None and span.parent.span_id == parent.context.span_id


def _names(recorded: Recorded) -> list[str]:
    return sorted(s.name for s in recorded.spans())


async def test_turns_and_a_requested_rotation(recorded: Recorded, emu: Emulator) -> None:
    with trio.fail_after(10):
        async with open_session(make_config(emu)) as session:
            assert await session.ask("hello") == "You said: hello"
            await session.rotate()
            assert await session.ask("again") == "You said: again"
    metrics = recorded.metrics()
    assert set(metrics) == EVERY_SESSION | CONNECTED | TURNS | MOVED
    assert metrics[n.CONNECTIONS] == {
        labels(**BASE, livemesh__connection__resumed=False): 1,
        labels(**BASE, livemesh__connection__resumed=True): 1,
    }
    assert metrics[n.CONNECTION_CLOSES] == {labels(**BASE, livemesh__close__code=1000): 2}
    assert metrics[n.MOVES] == {labels(**BASE, livemesh__move__reason="requested"): 1}
    assert metrics[n.MOVE_STALL][labels(**BASE, livemesh__move__reason="requested")].count == 1
    assert metrics[n.RECONNECTS] == {labels(**BASE): 1}
    assert metrics[n.SESSION_CLOSES] == {labels(**BASE): 1}
    assert metrics[n.SESSIONS_ACTIVE] == {labels(**BASE): 0}
    assert metrics[n.OPERATION_DURATION][labels(**OP)].count == 2
    assert metrics[n.TIME_TO_FIRST_CHUNK][labels(**OP)].count == 2
    usage = metrics[n.TOKEN_USAGE]
    assert set(usage) == {
        labels(**OP, gen_ai__token__type="input"),
        labels(**OP, gen_ai__token__type="output"),
    }
    assert usage[labels(**OP, gen_ai__token__type="output")].count == 2  # one report per turn
    traffic = metrics[n.TRAFFIC_MESSAGES]
    stats = session.statistics()
    assert traffic == {
        labels(**BASE, network__io__direction="receive"): stats.messages_in,
        labels(**BASE, network__io__direction="transmit"): stats.messages_out,
    }
    assert metrics[n.TRAFFIC_BYTES][labels(**BASE, network__io__direction="receive")] == stats.bytes_in

    assert _names(recorded) == sorted([n.SPAN_SESSION, n.SPAN_CONNECTION, n.SPAN_CONNECTION, TURN, TURN])
    session_span = recorded.span(n.SPAN_SESSION)
    first, second = _connections(recorded)
    assert _child_of(first, session_span) and _child_of(second, session_span)
    for connection in (first, second):
        attributes = connection.attributes or {}
        assert attributes[n.REALTIME_SESSION_ID] == session.server_session_id
        assert attributes[n.SESSION_ID] == session.session_id
        assert attributes[n.CLOSE_CODE] == 1000
    assert (first.attributes or {})[n.RESUMED] is False and (second.attributes or {})[n.RESUMED] is True
    turns = sorted((s for s in recorded.spans() if s.name == TURN), key=lambda s: s.start_time or 0)
    assert _child_of(turns[0], first) and _child_of(turns[1], second)
    assert all((t.attributes or {})[n.FINISH_REASONS] == ("stop",) for t in turns)
    assert all((t.attributes or {})[n.USAGE_OUTPUT] > 0 for t in turns)
    assert [e.name for e in session_span.events] == [n.EVENT_MOVE_STARTED, n.EVENT_MOVE_DONE]
    assert [e.name for e in second.events] == [n.EVENT_REPLAY]
    assert all(s.status.status_code is StatusCode.UNSET for s in recorded.spans())


async def test_a_go_away_moves_the_session(recorded: Recorded, emu: Emulator) -> None:
    with trio.fail_after(10):
        async with open_session(make_config(emu)) as session:
            await session.ask("hello")
            await emu.send_go_away(time_left=2.0)
            await session.wait_moved(1)
    metrics = recorded.metrics()
    assert set(metrics) == EVERY_SESSION | CONNECTED | TURNS | MOVED | {n.GO_AWAYS}
    assert _names(recorded) == sorted([n.SPAN_SESSION, n.SPAN_CONNECTION, n.SPAN_CONNECTION, TURN])
    assert metrics[n.GO_AWAYS] == {labels(**BASE): 1}
    assert metrics[n.MOVES] == {labels(**BASE, livemesh__move__reason="goAway"): 1}
    assert metrics[n.RECONNECTS] == {labels(**BASE): 1}
    first, _ = _connections(recorded)
    assert [e.name for e in first.events] == [n.EVENT_GO_AWAY]
    assert (first.events[0].attributes or {})[n.TIME_LEFT] == 2.0
    session_span = recorded.span(n.SPAN_SESSION)
    assert [(e.name, (e.attributes or {})[n.MOVE_REASON]) for e in session_span.events] == [
        (n.EVENT_MOVE_STARTED, "goAway"),
        (n.EVENT_MOVE_DONE, "goAway"),
    ]


async def test_a_drop_is_a_move_with_reason_drop(recorded: Recorded, emu: Emulator) -> None:
    with trio.fail_after(10):
        async with open_session(make_config(emu)) as session:
            await session.ask("my name is Alice")
            await session.wait_quiet()  # the handle that follows the turn arrived: nothing to replay
            await emu.drop()  # abrupt: no close frame (1006)
            await session.wait_moved(1)
            assert json.loads(await session.ask("recall")) == ["my name is Alice"]
    metrics = recorded.metrics()
    assert set(metrics) == EVERY_SESSION | CONNECTED | TURNS | MOVED
    assert _names(recorded) == sorted([n.SPAN_SESSION, n.SPAN_CONNECTION, n.SPAN_CONNECTION, TURN, TURN])
    assert metrics[n.MOVES] == {labels(**BASE, livemesh__move__reason="drop"): 1}
    assert metrics[n.CONNECTION_CLOSES] == {
        labels(**BASE, livemesh__close__code=1006): 1,
        labels(**BASE, livemesh__close__code=1000): 1,
    }
    assert metrics[n.RECONNECTS] == {labels(**BASE): 1}
    first, second = _connections(recorded)
    assert first.status.status_code is StatusCode.ERROR and (first.attributes or {})[n.CLOSE_CODE] == 1006
    assert second.status.status_code is StatusCode.UNSET and (second.attributes or {})[n.RESUMED] is True
    session_span = recorded.span(n.SPAN_SESSION)
    assert [(e.name, (e.attributes or {})[n.MOVE_REASON]) for e in session_span.events] == [
        (n.EVENT_MOVE_DONE, "drop")
    ]


async def test_a_tool_call(recorded: Recorded, emu: Emulator) -> None:
    with trio.fail_after(10):
        async with open_session(make_config(emu, tools=[get_stock_price])) as session:
            await session.send_client_content('call get_stock_price {"symbol": "AAPL"}')
            turn = await session.receive_turn()
            assert [c.name for c in turn.tool_calls] == ["get_stock_price"]
    metrics = recorded.metrics()
    # The emulator reports no prompt tokens for this turn: no input tokens by modality.
    assert set(metrics) == EVERY_SESSION | CONNECTED | TURNS - {n.USAGE_INPUT_TOKENS} | {n.TOOL_DURATION}
    assert _names(recorded) == sorted(
        [n.SPAN_SESSION, n.SPAN_CONNECTION, TURN, "execute_tool get_stock_price"]
    )
    assert set(metrics[n.TOOL_DURATION]) == {labels(**BASE, livemesh__tool__outcome="ok")}
    assert metrics[n.TOOL_DURATION][labels(**BASE, livemesh__tool__outcome="ok")].count == 1
    (tool,) = [s for s in recorded.spans() if s.name == "execute_tool get_stock_price"]
    attributes = tool.attributes or {}
    assert attributes[n.TOOL_NAME] == "get_stock_price"
    assert attributes[n.TOOL_CALL_ID] == turn.tool_calls[0].id
    assert attributes[n.TOOL_OUTCOME] == "ok"
    assert _child_of(tool, recorded.span(TURN))


async def test_a_refused_setup(recorded: Recorded, emu: Emulator) -> None:
    with trio.fail_after(5), pytest.raises(SetupRejectedError):
        async with open_session(make_config(emu, model="gemini-live-9-imaginary")):
            pass  # pragma: no cover
    metrics = recorded.metrics()
    base = {**BASE, "gen_ai__request__model": "gemini-live-9-imaginary"}
    assert metrics == {
        n.SESSION_CLOSES: {labels(**base, error__type="SetupRejectedError"): 1},
        n.SESSIONS_ACTIVE: {labels(**base): 0},
        n.TRAFFIC_BYTES: {
            labels(**base, network__io__direction="receive"): 0,
            labels(**base, network__io__direction="transmit"): 0,
        },
        n.TRAFFIC_MESSAGES: {
            labels(**base, network__io__direction="receive"): 0,
            labels(**base, network__io__direction="transmit"): 0,
        },
    }
    (span,) = recorded.spans()
    assert span.name == n.SPAN_SESSION
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})[n.ERROR_TYPE] == "SetupRejectedError"


async def test_a_drop_mid_turn_replays_the_turn(recorded: Recorded) -> None:
    # Handles only at turn ends, and answers that take a while: a turn the server consumed is
    # covered by no handle when the connection drops, so the resumed connection resends it.
    config = EmulatorConfig(resumption_update_interval_s=60, first_chunk_delay_s=0.2, limits=ServiceLimits())
    async with open_emulator(config) as emu:
        with trio.fail_after(10):
            async with open_session(make_config(emu)) as session:
                await session.ask("my name is Alice")
                await session.wait_quiet()  # the handle that follows the turn arrived
                await session.send_client_content("recall")
                await trio.testing.wait_all_tasks_blocked()  # sent; the answer is on its way
                await emu.drop()
                assert "Alice" in (await session.receive_turn()).text
    metrics = recorded.metrics()
    assert metrics[n.REPLAYS] == {labels(**BASE, livemesh__replay__kind="replayed"): 1}
    assert metrics[n.MOVES] == {labels(**BASE, livemesh__move__reason="drop"): 1}
    assert metrics[n.OPERATION_DURATION][labels(**OP)].count == 2  # the cut turn is not a duration
    assert _names(recorded) == sorted([n.SPAN_SESSION, *[n.SPAN_CONNECTION] * 2, *[TURN] * 3])
    first, second = _connections(recorded)
    (replay,) = second.events
    assert dict(replay.attributes or {}) == {
        "livemesh.replay.replayed": 1,
        "livemesh.replay.restored": 0,
        "livemesh.replay.ambiguous": 0,
        "livemesh.replay.skipped": 0,
    }
    cut, answered = sorted(
        (s for s in recorded.spans() if s.name == TURN and _child_of(s, first)),
        key=lambda s: s.start_time or 0,
    )[::-1]
    assert answered.status.status_code is StatusCode.UNSET
    assert cut.status.status_code is StatusCode.ERROR and (cut.attributes or {})[n.ERROR_TYPE] == "ended"
    (again,) = [s for s in recorded.spans() if s.name == TURN and _child_of(s, second)]
    assert (again.attributes or {})[n.FINISH_REASONS] == ("stop",)


KEY = "AIzaSENTINELKEY0123456789abcdef"
TEXT = "SENTINELTEXT my secret is swordfish"


async def test_no_key_no_user_text_no_handle_is_ever_recorded(recorded: Recorded, emu: Emulator) -> None:
    handles: list[str] = []
    config = make_config(emu, auth=ApiKey(KEY), tools=[get_stock_price])
    with trio.fail_after(10):
        async with open_session(config, on_handle=handles.append) as session:
            assert TEXT in await session.ask(TEXT)
            await session.send_client_content(f'call get_stock_price {{"symbol": "{TEXT}"}}')
            await session.receive_turn()
            await session.rotate(reason=f"{TEXT} {KEY}")
            await emu.drop()
            await session.ask(TEXT)
    assert handles
    assert len(recorded.spans()) > 5
    assert_never_recorded(recorded, KEY, TEXT, "SENTINEL", "swordfish", *handles)
