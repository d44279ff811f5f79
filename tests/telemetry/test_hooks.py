"""Each hook records exactly the points and spans it promises (driven directly, no session)."""

from __future__ import annotations

import attrs
from opentelemetry.trace import SpanKind, StatusCode

from livemesh import telemetry, wire
from livemesh.errors import SetupRejectedError
from livemesh.telemetry import names as n
from tests.telemetry.conftest import Histogram, Recorded, labels

BASE = {
    "gen_ai__provider__name": "gcp.gemini",
    "gen_ai__request__model": "m-live",
    "livemesh__engine": "sansio",
}
GENAI = {k: v for k, v in BASE.items() if k != "livemesh__engine"}  # gen_ai.* metrics: no engine


@attrs.define
class Counters:
    bytes_in: int = 0
    bytes_out: int = 0
    messages_in: int = 0
    messages_out: int = 0


def _probe(session_id: str = "s1", counters: Counters | None = None) -> telemetry.SessionProbe:
    probe = telemetry.session_probe(
        session_id, model="m-live", api="gemini", engine="sansio", counters=counters
    )
    assert probe.enabled
    return probe


def test_a_turn_on_one_connection(recorded: Recorded) -> None:
    probe = _probe()
    probe.opened()
    probe.connection_opened("srv-1", resumed=False)
    probe.turn_started(10.0)
    probe.first_chunk(10.25)
    probe.first_chunk(10.5)  # later chunks of the same turn change nothing
    probe.usage(
        wire.UsageMetadata(
            prompt_token_count=120,
            response_token_count=30,
            prompt_tokens_details=[
                wire.ModalityTokenCount(modality="TEXT", token_count=20),
                wire.ModalityTokenCount(modality="AUDIO", token_count=100),
            ],
            response_tokens_details=[wire.ModalityTokenCount(modality="AUDIO", token_count=30)],
        )
    )
    probe.turn_complete(11.0)
    probe.connection_closed(1000)
    probe.closed()

    metrics = recorded.metrics()
    op = {**GENAI, "gen_ai__operation__name": "realtime_inference"}
    assert metrics[n.OPERATION_DURATION] == {labels(**op): Histogram(1, 1.0)}
    assert metrics[n.TIME_TO_FIRST_CHUNK] == {labels(**op): Histogram(1, 0.25)}
    assert metrics[n.TOKEN_USAGE] == {
        labels(**op, gen_ai__token__type="input"): Histogram(1, 120),
        labels(**op, gen_ai__token__type="output"): Histogram(1, 30),
    }
    assert metrics[n.USAGE_INPUT_TOKENS] == {
        labels(**op, gen_ai__token__modality="text"): 20,
        labels(**op, gen_ai__token__modality="audio"): 100,
    }
    assert metrics[n.USAGE_OUTPUT_TOKENS] == {labels(**op, gen_ai__token__modality="audio"): 30}
    assert metrics[n.CONNECTIONS] == {labels(**BASE, livemesh__connection__resumed=False): 1}
    assert metrics[n.CONNECTION_CLOSES] == {labels(**BASE, livemesh__close__code=1000): 1}
    assert metrics[n.SESSION_CLOSES] == {labels(**BASE): 1}
    assert metrics[n.SESSIONS_ACTIVE] == {labels(**BASE): 0}

    session = recorded.span(n.SPAN_SESSION)
    connection = recorded.span(n.SPAN_CONNECTION)
    turn = recorded.span("realtime_inference m-live")
    assert session.parent is None
    assert connection.parent is not None and connection.parent.span_id == session.context.span_id
    assert turn.parent is not None and turn.parent.span_id == connection.context.span_id
    assert connection.kind is SpanKind.CLIENT and turn.kind is SpanKind.CLIENT
    assert connection.attributes is not None and turn.attributes is not None
    assert connection.attributes[n.REALTIME_SESSION_ID] == "srv-1"
    assert connection.attributes[n.SESSION_ID] == "s1"
    assert turn.attributes[n.REALTIME_SESSION_ID] == "srv-1"
    assert turn.attributes[n.OPERATION_NAME] == "realtime_inference"
    assert turn.attributes[n.FINISH_REASONS] == ("stop",)
    assert turn.attributes["gen_ai.usage.audio.input_tokens"] == 100
    assert turn.attributes[n.USAGE_OUTPUT] == 30
    assert all(s.status.status_code is StatusCode.UNSET for s in recorded.spans())


def test_a_move_after_go_away(recorded: Recorded) -> None:
    probe = _probe()
    probe.opened()
    probe.connection_opened(None)
    probe.go_away(5.0)
    probe.move_started("go_away")
    probe.connection_closed(1000)
    probe.reconnect()
    probe.connection_opened(None, resumed=True)
    probe.replay(replayed=3, restored=1, ambiguous=1, skipped=2)
    probe.move_done("go_away", 0.125)
    probe.closed()

    metrics = recorded.metrics()
    assert metrics[n.GO_AWAYS] == {labels(**BASE): 1}
    assert metrics[n.MOVES] == {labels(**BASE, livemesh__move__reason="goAway"): 1}
    assert metrics[n.MOVE_STALL] == {labels(**BASE, livemesh__move__reason="goAway"): Histogram(1, 0.125)}
    assert metrics[n.RECONNECTS] == {labels(**BASE): 1}
    assert metrics[n.REPLAYS] == {
        labels(**BASE, livemesh__replay__kind=kind): count
        for kind, count in {"replayed": 3, "restored": 1, "ambiguous": 1, "skipped": 2}.items()
    }
    assert metrics[n.CONNECTIONS] == {
        labels(**BASE, livemesh__connection__resumed=False): 1,
        labels(**BASE, livemesh__connection__resumed=True): 1,
    }
    first, second = sorted(
        (s for s in recorded.spans() if s.name == n.SPAN_CONNECTION),
        key=lambda s: (s.attributes or {})[n.CONNECTION_INDEX],
    )
    # No server session id (the Gemini API gives none): one made per connection.
    assert (first.attributes or {})[n.REALTIME_SESSION_ID] == "s1/1"
    assert (second.attributes or {})[n.REALTIME_SESSION_ID] == "s1/2"
    assert [e.name for e in first.events] == [n.EVENT_GO_AWAY]
    assert (first.events[0].attributes or {})[n.TIME_LEFT] == 5.0
    assert [e.name for e in second.events] == [n.EVENT_REPLAY]
    assert dict(second.events[0].attributes or {}) == {
        "livemesh.replay.replayed": 3,
        "livemesh.replay.restored": 1,
        "livemesh.replay.ambiguous": 1,
        "livemesh.replay.skipped": 2,
    }
    session = recorded.span(n.SPAN_SESSION)
    assert [(e.name, dict(e.attributes or {})) for e in session.events] == [
        (n.EVENT_MOVE_STARTED, {n.MOVE_REASON: "goAway"}),
        (n.EVENT_MOVE_DONE, {n.MOVE_REASON: "goAway", n.STALL: 0.125}),
    ]


def test_an_interrupted_turn(recorded: Recorded) -> None:
    probe = _probe()
    probe.opened()
    probe.connection_opened("srv")
    probe.interrupted()  # no turn open: nothing to mark
    probe.turn_started(0.0)
    probe.first_chunk(0.5)
    probe.interrupted()
    probe.turn_complete(0.75)
    probe.turn_started(1.0)
    probe.first_chunk(1.5)
    probe.turn_complete(2.0)
    probe.closed()
    first, second = sorted(
        (s for s in recorded.spans() if s.name == "realtime_inference m-live"),
        key=lambda s: s.start_time or 0,
    )
    assert (first.attributes or {})[n.FINISH_REASONS] == ("interrupted",)
    assert (second.attributes or {})[n.FINISH_REASONS] == ("stop",)
    op = {**GENAI, "gen_ai__operation__name": "realtime_inference"}
    assert recorded.metrics()[n.OPERATION_DURATION] == {labels(**op): Histogram(2, 1.75)}


def test_move_reasons_map_onto_the_closed_set(recorded: Recorded) -> None:
    probe = _probe()
    probe.opened()
    for reason in ("go_away", "timer", "connection_age", "session_budget", "drop", "requested", "pool",
                   "a caller's own words"):  # fmt: skip
        probe.move_done(reason, 0.0)
    probe.closed()
    moves = recorded.metrics()[n.MOVES]
    assert moves == {
        labels(**BASE, livemesh__move__reason="goAway"): 1,
        labels(**BASE, livemesh__move__reason="age"): 2,
        labels(**BASE, livemesh__move__reason="budget"): 1,
        labels(**BASE, livemesh__move__reason="drop"): 1,
        labels(**BASE, livemesh__move__reason="requested"): 3,
    }


def test_tool_calls_by_outcome(recorded: Recorded) -> None:
    probe = _probe()
    probe.opened()
    probe.connection_opened("srv")
    probe.first_chunk(0.0)  # a turn the server's voice detection started
    probe.tool_started("c1", "lookup", 1.0)
    probe.tool_started("c2", "lookup", 1.0)
    probe.tool_started("c3", "lookup", 1.0)
    probe.tool_started("c4", "lookup", 1.0)
    probe.tool_done("c1", "ok", 1.5)
    probe.tool_done("c2", "error", 3.0)
    probe.tool_done("c3", "cancelled", 1.25)
    probe.tool_done("c4", "something else", 2.0)  # not an outcome: counted as an error
    probe.tool_done("c1", "ok", 9.0)  # answered twice: the second changes nothing
    probe.turn_complete(4.0)
    probe.closed()

    metrics = recorded.metrics()
    assert metrics[n.TOOL_DURATION] == {
        labels(**BASE, livemesh__tool__outcome="ok"): Histogram(1, 0.5),
        labels(**BASE, livemesh__tool__outcome="error"): Histogram(2, 3.0),
        labels(**BASE, livemesh__tool__outcome="cancelled"): Histogram(1, 0.25),
    }
    assert n.TIME_TO_FIRST_CHUNK not in metrics  # no user turn was sent: nothing to measure from
    assert metrics[n.OPERATION_DURATION] == {
        labels(**GENAI, gen_ai__operation__name="realtime_inference"): Histogram(1, 4.0)
    }
    turn = recorded.span("realtime_inference m-live")
    tools = [s for s in recorded.spans() if s.name == "execute_tool lookup"]
    assert len(tools) == 4
    for span in tools:
        attributes = span.attributes or {}
        assert span.parent is not None and span.parent.span_id == turn.context.span_id
        assert attributes[n.OPERATION_NAME] == "execute_tool"
        assert attributes[n.TOOL_NAME] == "lookup"
        assert attributes[n.TOOL_TYPE] == "function"
        ok = attributes[n.TOOL_CALL_ID] == "c1"
        assert span.status.status_code is (StatusCode.UNSET if ok else StatusCode.ERROR)


def test_a_failed_session_ends_its_open_spans(recorded: Recorded) -> None:
    probe = _probe()
    probe.opened()
    probe.connection_opened("srv")
    probe.turn_started(0.0)
    probe.tool_started("c1", "lookup", 0.5)
    probe.closed(SetupRejectedError("refused: key SENTINEL-KEY-123 and 'my secret words'", code=1008))

    metrics = recorded.metrics()
    assert metrics[n.SESSION_CLOSES] == {labels(**BASE, error__type="SetupRejectedError"): 1}
    assert metrics[n.CONNECTION_CLOSES] == {labels(**BASE): 1}
    assert n.OPERATION_DURATION not in metrics  # the turn never completed
    assert n.TOOL_DURATION not in metrics
    spans = recorded.spans()
    assert len(spans) == 4
    assert all(s.end_time is not None for s in spans)
    session = recorded.span(n.SPAN_SESSION)
    assert session.status.status_code is StatusCode.ERROR
    assert session.status.description == "SetupRejectedError"
    assert (session.attributes or {})[n.ERROR_TYPE] == "SetupRejectedError"
    assert recorded.span("execute_tool lookup").status.status_code is StatusCode.ERROR
    assert recorded.span("realtime_inference m-live").status.status_code is StatusCode.ERROR


def test_traffic_and_active_sessions_are_observed(recorded: Recorded) -> None:
    a, b = Counters(), Counters()
    first, second = _probe("s1", a), _probe("s2", b)
    first.opened()
    second.opened()
    a.bytes_in, a.bytes_out, a.messages_in, a.messages_out = 1000, 200, 10, 2
    b.bytes_in, b.bytes_out, b.messages_in, b.messages_out = 500, 100, 5, 1
    metrics = recorded.metrics()
    assert metrics[n.SESSIONS_ACTIVE] == {labels(**BASE): 2}
    assert metrics[n.TRAFFIC_BYTES] == {
        labels(**BASE, network__io__direction="receive"): 1500,
        labels(**BASE, network__io__direction="transmit"): 300,
    }
    first.closed()
    a.bytes_in = 10**9  # a closed session's counters are no longer read
    b.messages_in = 6
    metrics = recorded.metrics()
    assert metrics[n.SESSIONS_ACTIVE] == {labels(**BASE): 1}
    assert metrics[n.TRAFFIC_BYTES][labels(**BASE, network__io__direction="receive")] == 1500
    assert metrics[n.TRAFFIC_MESSAGES] == {
        labels(**BASE, network__io__direction="receive"): 16,
        labels(**BASE, network__io__direction="transmit"): 3,
    }
    second.closed()
    second.closed()  # twice: counted once
    assert recorded.metrics()[n.SESSIONS_ACTIVE] == {labels(**BASE): 0}
    assert recorded.metrics()[n.SESSION_CLOSES] == {labels(**BASE): 2}


def test_pool_hooks(recorded: Recorded) -> None:
    queue = [3]
    pool = telemetry.pool_probe(model="m-live", api="vertex", engine="sansio", waiting=lambda: queue[0])
    other = telemetry.pool_probe(model="m-live", api="vertex", engine="sansio", waiting=lambda: 2)
    assert pool.enabled
    pool.quota_backoff(2.0)
    metrics = recorded.metrics()
    vertex = {**BASE, "gen_ai__provider__name": "gcp.vertex_ai"}
    assert metrics[n.SESSIONS_QUEUED] == {labels(**vertex): 5}
    assert metrics[n.QUOTA_BACKOFFS] == {labels(**vertex): 1}
    queue[0] = 1
    assert recorded.metrics()[n.SESSIONS_QUEUED] == {labels(**vertex): 3}
    other.close()
    assert recorded.metrics()[n.SESSIONS_QUEUED] == {labels(**vertex): 1}
    pool.close()
    bare = telemetry.pool_probe()  # a pool of many models: no model label at all
    bare.quota_backoff(1.0)
    assert recorded.metrics()[n.QUOTA_BACKOFFS][labels(gen_ai__provider__name="gcp.gemini")] == 1


def test_disabled_telemetry_hands_out_the_no_op_probes(recorded: Recorded) -> None:
    telemetry.disable()
    assert telemetry.current() is None
    probe = telemetry.session_probe("s1", model="m")
    assert probe is telemetry.NOOP_SESSION and not probe.enabled
    assert telemetry.pool_probe() is telemetry.NOOP_POOL
    probe.opened()
    probe.connection_opened("srv", resumed=True)
    probe.turn_started(0.0)
    probe.first_chunk(0.1)
    probe.usage(wire.UsageMetadata(prompt_token_count=1))
    probe.turn_complete(0.2, interrupted=True)
    probe.tool_started("c", "t", 0.0)
    probe.tool_done("c", "ok", 0.1)
    probe.go_away(1.0)
    probe.move_started("go_away")
    probe.replay(replayed=1)
    probe.reconnect()
    probe.move_done("go_away", 0.1)
    probe.connection_closed(1000)
    probe.closed(RuntimeError("x"))
    assert recorded.metrics() == {} and recorded.spans() == []


def test_metrics_without_tracing(recorded: Recorded) -> None:
    """With a tracer that records nothing (no SDK, or the session not sampled), no child span is
    even made, and every metric is recorded all the same."""
    from opentelemetry.trace import NoOpTracerProvider

    telemetry.install(recorded.telemetry_meters, NoOpTracerProvider())
    probe = _probe()
    probe.opened()
    probe.connection_opened("srv")
    probe.turn_started(0.0)
    probe.first_chunk(0.5)
    probe.usage(wire.UsageMetadata(prompt_token_count=3, response_token_count=2))
    probe.tool_started("c1", "lookup", 0.5)
    probe.tool_done("c1", "ok", 0.75)
    probe.turn_complete(1.0)
    probe.go_away(1.0)
    probe.move_started("go_away")
    probe.connection_closed(1000)
    probe.connection_opened(None, resumed=True)
    probe.replay(replayed=1)
    probe.move_done("go_away", 0.25)
    probe.closed()
    assert recorded.spans() == []
    metrics = recorded.metrics()
    op = {**GENAI, "gen_ai__operation__name": "realtime_inference"}
    assert metrics[n.OPERATION_DURATION] == {labels(**op): Histogram(1, 1.0)}
    assert metrics[n.TIME_TO_FIRST_CHUNK] == {labels(**op): Histogram(1, 0.5)}
    assert metrics[n.TOOL_DURATION] == {labels(**BASE, livemesh__tool__outcome="ok"): Histogram(1, 0.25)}
    assert metrics[n.MOVES] == {labels(**BASE, livemesh__move__reason="goAway"): 1}
    assert metrics[n.REPLAYS] == {labels(**BASE, livemesh__replay__kind="replayed"): 1}
    assert metrics[n.GO_AWAYS] == {labels(**BASE): 1}
    assert metrics[n.CONNECTION_CLOSES] == {
        labels(**BASE, livemesh__close__code=1000): 1,
        labels(**BASE): 1,  # the second connection, ended with the session
    }
    assert metrics[n.USAGE_INPUT_TOKENS] == {labels(**op, gen_ai__token__modality="unknown"): 3}


def test_hooks_outside_the_session_record_nothing(recorded: Recorded) -> None:
    """Before opened() and after closed() no span is started (it would never end) and nothing is
    counted (a closed probe's counts are no longer read)."""
    probe = _probe()
    probe.connection_opened("srv")
    probe.turn_started(0.0)
    probe.tool_started("c0", "lookup", 0.0)
    probe.opened()
    probe.closed()
    probe.connection_opened("srv")
    probe.first_chunk(1.0)
    probe.tool_started("c1", "lookup", 1.0)
    probe.tool_done("c1", "ok", 2.0)
    probe.turn_complete(2.0)
    assert [s.name for s in recorded.spans()] == [n.SPAN_SESSION]
    metrics = recorded.metrics()
    assert (
        n.CONNECTIONS not in metrics
        and n.OPERATION_DURATION not in metrics
        and n.TOOL_DURATION not in metrics
    )
