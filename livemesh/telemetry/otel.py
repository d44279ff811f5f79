"""The hooks, recorded through the OpenTelemetry API (imported only when it is installed).

:class:`Telemetry` owns the instruments and a tracer, made once from a meter provider and a
tracer provider (the global ones unless given). Its probes record into them:

* counters and histograms at the decision points (a turn's duration, a move, a replay, a tool
  call's latency), a few a turn, none per message;
* traffic (bytes and messages each way) and active sessions are *observed*: read from the
  sessions' own counters when a reader collects, so the per-message cost is nothing at all;
* spans: one per logical session, a child per connection (``gen_ai.realtime_session.id``), a
  ``realtime_inference`` span per model turn and an ``execute_tool`` span per tool call, with events
  for goAways, move decisions and replays. Spans are never made current (no context is attached):
  each is parented explicitly, so nothing leaks into the caller's trio tasks.

Nothing recorded is free text: attribute values are numbers, the model's name, the API flavour,
the engine, livemesh's session id, ids the server issued, and names from the closed sets in
:mod:`livemesh.telemetry.names`. No exception is recorded with its message or traceback: only its
class name (``error.type``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import SpanKind, Status, StatusCode

from livemesh.telemetry import names as n
from livemesh.telemetry.probes import PoolProbe, SessionProbe, TrafficCounters
from livemesh.telemetry.usage import token_counts

if TYPE_CHECKING:
    from livemesh import wire

__all__ = ["Telemetry"]

_VERSION = "0.1.0"
_Key = tuple[str, str, str]  # (provider, model, engine)
_CLEAN_CLOSES = frozenset({1000, 1001})


def _base(api: str, model: str, engine: str) -> dict[str, str]:
    attrs = {n.PROVIDER_NAME: n.provider(api)}
    if model:
        attrs[n.REQUEST_MODEL] = model
    if engine:
        attrs[n.ENGINE] = engine
    return attrs


def _key(attrs: Mapping[str, str]) -> _Key:
    return (attrs[n.PROVIDER_NAME], attrs.get(n.REQUEST_MODEL, ""), attrs.get(n.ENGINE, ""))


class Telemetry:
    """livemesh's instruments and tracer, and the probes that record into them.

    Args:
        meter_provider: where metrics go (the global one if None: whatever the application set
            with ``opentelemetry.metrics.set_meter_provider``, possibly later).
        tracer_provider: where spans go (the global one if None).
    """

    def __init__(
        self,
        meter_provider: metrics.MeterProvider | None = None,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        meter = (meter_provider or metrics.get_meter_provider()).get_meter(n.SCOPE, _VERSION)
        self.tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer(n.SCOPE, _VERSION)
        self._lock = threading.Lock()  # readers may collect from another thread (Prometheus's)
        self._live: dict[int, OtelSessionProbe] = {}
        self._retired: dict[_Key, list[int]] = {}  # bytes in, bytes out, messages in, messages out
        self._attrs: dict[_Key, dict[str, str]] = {}
        self._pools: dict[int, OtelPoolProbe] = {}

        self.token_usage = meter.create_histogram(
            n.TOKEN_USAGE,
            "{token}",
            "Input and output tokens per usage report.",
            explicit_bucket_boundaries_advisory=n.TOKEN_BUCKETS,
        )
        self.usage_input = meter.create_counter(
            n.USAGE_INPUT_TOKENS, "{token}", "Input tokens used, by modality."
        )
        self.usage_output = meter.create_counter(
            n.USAGE_OUTPUT_TOKENS, "{token}", "Output tokens used, by modality."
        )
        self.operation_duration = meter.create_histogram(
            n.OPERATION_DURATION,
            "s",
            "A model turn: from the user's turn (or the first chunk) to turnComplete.",
            explicit_bucket_boundaries_advisory=n.DURATION_BUCKETS,
        )
        self.time_to_first_chunk = meter.create_histogram(
            n.TIME_TO_FIRST_CHUNK,
            "s",
            "From a user turn sent to the model's first chunk.",
            explicit_bucket_boundaries_advisory=n.DURATION_BUCKETS,
        )
        self.session_closes = meter.create_counter(
            n.SESSION_CLOSES, "{session}", "Sessions ended (error.type: the error they failed with)."
        )
        self.connections = meter.create_counter(n.CONNECTIONS, "{connection}", "Connections set up.")
        self.connection_closes = meter.create_counter(
            n.CONNECTION_CLOSES, "{connection}", "Connections ended, by WebSocket close code."
        )
        self.go_aways = meter.create_counter(n.GO_AWAYS, "{goAway}", "goAway notices received.")
        self.moves = meter.create_counter(n.MOVES, "{move}", "Moves to a fresh connection, by reason.")
        self.move_stall = meter.create_histogram(
            n.MOVE_STALL,
            "s",
            "How long each move held the session's input.",
            explicit_bucket_boundaries_advisory=n.STALL_BUCKETS,
        )
        self.reconnects = meter.create_counter(
            n.RECONNECTS, "{connection}", "Connections opened after a session's first (moves and retries)."
        )
        self.replays = meter.create_counter(
            n.REPLAYS, "{message}", "Input resent, restored or skipped on resumed connections, by kind."
        )
        self.tool_duration = meter.create_histogram(
            n.TOOL_DURATION,
            "s",
            "Tool calls run by the session, by outcome.",
            explicit_bucket_boundaries_advisory=n.STALL_BUCKETS,
        )
        self.quota_backoffs = meter.create_counter(
            n.QUOTA_BACKOFFS, "{backoff}", "Waits after the service refused for quota."
        )
        meter.create_observable_up_down_counter(
            n.SESSIONS_QUEUED,
            [self._observe_queued],
            "{session}",
            "Sessions waiting for admission to a pool.",
        )
        meter.create_observable_up_down_counter(
            n.SESSIONS_ACTIVE, [self._observe_active], "{session}", "Sessions open now."
        )
        meter.create_observable_counter(
            n.TRAFFIC_BYTES, [self._observe_bytes], "By", "WebSocket payload bytes, each way."
        )
        meter.create_observable_counter(
            n.TRAFFIC_MESSAGES, [self._observe_messages], "{message}", "Live API messages, each way."
        )

    # ------------------------------------------------------------------ probes

    def session(
        self,
        session_id: str,
        *,
        model: str,
        api: str = "gemini",
        engine: str = "",
        counters: TrafficCounters | None = None,
    ) -> OtelSessionProbe:
        """A probe for one logical session.

        Args:
            session_id: livemesh's id for the session (``livemesh.session.id``).
            model: the model it talks to (``gen_ai.request.model``).
            api: ``"gemini"`` or ``"vertex"`` (``gen_ai.provider.name``).
            engine: the WebSocket engine (``livemesh.engine``).
            counters: the session's own traffic counters, read when metrics are collected.

        Returns:
            The probe; its :meth:`~SessionProbe.opened` starts the session's span.
        """
        return OtelSessionProbe(self, session_id, _base(api, model, engine), counters)

    def pool(
        self,
        *,
        model: str = "",
        api: str = "gemini",
        engine: str = "",
        waiting: Callable[[], int] | None = None,
    ) -> OtelPoolProbe:
        """A probe for one pool.

        Args:
            model: the model its sessions talk to, if one.
            api: ``"gemini"`` or ``"vertex"``.
            engine: the WebSocket engine.
            waiting: how many sessions wait for admission now, observed until the probe's
                :meth:`~PoolProbe.close`.

        Returns:
            The probe.
        """
        probe = OtelPoolProbe(self, _base(api, model, engine), waiting)
        if waiting is not None:
            with self._lock:
                self._pools[id(probe)] = probe
        return probe

    # ------------------------------------------------------------------ observed instruments

    def _register(self, probe: OtelSessionProbe) -> None:
        with self._lock:
            self._live[id(probe)] = probe
            self._attrs.setdefault(probe.key, probe.attrs)

    def _retire(self, probe: OtelSessionProbe) -> None:
        with self._lock:
            if self._live.pop(id(probe), None) is None:
                return
            counters = probe.counters
            if counters is not None:
                totals = self._retired.setdefault(probe.key, [0, 0, 0, 0])
                totals[0] += counters.bytes_in
                totals[1] += counters.bytes_out
                totals[2] += counters.messages_in
                totals[3] += counters.messages_out

    def _traffic(self) -> dict[_Key, list[int]]:
        with self._lock:
            totals = {key: list(values) for key, values in self._retired.items()}
            for probe in self._live.values():
                counters = probe.counters
                if counters is None:
                    continue
                values = totals.setdefault(probe.key, [0, 0, 0, 0])
                values[0] += counters.bytes_in
                values[1] += counters.bytes_out
                values[2] += counters.messages_in
                values[3] += counters.messages_out
            return totals

    def _observe_active(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            active = dict.fromkeys(self._attrs, 0)
            for probe in self._live.values():
                active[probe.key] += 1
            attrs = dict(self._attrs)
        return [Observation(count, attrs[key]) for key, count in active.items()]

    def _observe_queued(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            pools = list(self._pools.values())
        queued: dict[_Key, tuple[dict[str, str], int]] = {}
        for pool in pools:
            if pool.waiting is None:
                continue
            attrs, count = queued.get(pool.key, (pool.attrs, 0))
            queued[pool.key] = (attrs, count + pool.waiting())
        return [Observation(count, attrs) for attrs, count in queued.values()]

    def _directed(self, first: int, options: CallbackOptions) -> Iterable[Observation]:
        found = []
        for key, values in self._traffic().items():
            attrs = self._attrs[key]
            found.append(Observation(values[first], {**attrs, n.IO_DIRECTION: "receive"}))
            found.append(Observation(values[first + 1], {**attrs, n.IO_DIRECTION: "transmit"}))
        return found

    def _observe_bytes(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._directed(0, options)

    def _observe_messages(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._directed(2, options)


def _with(attrs: Mapping[str, Any], key: str, value: Any) -> dict[str, Any]:
    return {**attrs, key: value}


class OtelSessionProbe(SessionProbe):
    """A session's hooks recording into a :class:`Telemetry` (see :class:`SessionProbe`)."""

    __slots__ = (
        "_connection",
        "_connections",
        "_cut",
        "_first_chunk_at",
        "_rt_attrs",
        "_session",
        "_tools",
        "_turn",
        "_turn_asked_at",
        "_turn_started_at",
        "attrs",
        "counters",
        "key",
        "session_id",
        "telemetry",
    )

    enabled = True

    def __init__(
        self, telemetry: Telemetry, session_id: str, attrs: dict[str, str], counters: TrafficCounters | None
    ) -> None:
        self.telemetry = telemetry
        self.session_id = session_id
        self.attrs = attrs
        self.key = _key(attrs)
        self.counters = counters
        self._session: trace.Span | None = None
        self._connection: trace.Span | None = None
        self._connections = 0
        self._rt_attrs: dict[str, Any] = {}
        self._turn: trace.Span | None = None
        self._turn_asked_at: float | None = None
        self._turn_started_at = 0.0
        self._first_chunk_at: float | None = None
        self._cut = False
        self._tools: dict[str, tuple[trace.Span, float]] = {}

    def __repr__(self) -> str:
        return f"<OtelSessionProbe {self.session_id!r}>"

    # ------------------------------------------------------------------ helpers

    def _parent(self) -> trace.Span | None:
        return self._turn or self._connection or self._session

    def _start(
        self, name: str, kind: SpanKind, attributes: Mapping[str, Any], start_ns: int | None = None
    ) -> trace.Span:
        parent = self._parent()
        context = trace.set_span_in_context(parent) if parent is not None else None
        return self.telemetry.tracer.start_span(
            name, context, kind, attributes, start_time=start_ns, record_exception=False
        )

    def _event(self, span: trace.Span | None, name: str, attributes: Mapping[str, Any]) -> None:
        if span is not None:
            span.add_event(name, attributes)

    # ------------------------------------------------------------------ session

    def opened(self) -> None:
        if self._session is not None:
            return
        self.telemetry._register(self)
        self._session = self.telemetry.tracer.start_span(
            n.SPAN_SESSION,
            kind=SpanKind.INTERNAL,
            attributes={**self.attrs, n.SESSION_ID: self.session_id},
            record_exception=False,
        )

    def closed(self, error: BaseException | None = None) -> None:
        if self._session is None:
            return
        kind = n.error_kind(error) if error is not None else None
        for call_id in list(self._tools):
            self._end_tool(call_id, "cancelled", None)
        self._end_turn(None, interrupted=True)
        self.connection_closed()
        attrs = self.attrs if kind is None else _with(self.attrs, n.ERROR_TYPE, kind)
        self.telemetry.session_closes.add(1, attrs)
        span, self._session = self._session, None
        if kind is not None:
            span.set_attribute(n.ERROR_TYPE, kind)
            span.set_status(Status(StatusCode.ERROR, kind))
        span.end()
        self.telemetry._retire(self)

    # ------------------------------------------------------------------ connections

    def connection_opened(self, server_session_id: str | None = None, *, resumed: bool = False) -> None:
        if self._connection is not None:
            self.connection_closed()
        self._connections += 1
        realtime_id = server_session_id or f"{self.session_id}/{self._connections}"
        self._rt_attrs = {**self.attrs, n.REALTIME_SESSION_ID: realtime_id}
        self.telemetry.connections.add(1, _with(self.attrs, n.RESUMED, resumed))
        self._connection = self._start(
            n.SPAN_CONNECTION,
            SpanKind.CLIENT,
            {
                **self._rt_attrs,
                n.SESSION_ID: self.session_id,
                n.CONNECTION_INDEX: self._connections,
                n.RESUMED: resumed,
            },
        )

    def connection_closed(self, code: int | None = None) -> None:
        span = self._connection
        if span is None:
            return
        self._end_turn(None, interrupted=True)
        self._connection = None
        attrs = self.attrs if code is None else _with(self.attrs, n.CLOSE_CODE, code)
        self.telemetry.connection_closes.add(1, attrs)
        if code is not None:
            span.set_attribute(n.CLOSE_CODE, code)
            if code not in _CLEAN_CLOSES:
                span.set_status(Status(StatusCode.ERROR, f"close code {code}"))
        span.end()

    def go_away(self, time_left_s: float | None) -> None:
        self.telemetry.go_aways.add(1, self.attrs)
        self._event(
            self._connection, n.EVENT_GO_AWAY, {} if time_left_s is None else {n.TIME_LEFT: time_left_s}
        )

    # ------------------------------------------------------------------ moves

    def move_started(self, reason: str) -> None:
        self._event(self._session, n.EVENT_MOVE_STARTED, {n.MOVE_REASON: n.move_reason(reason)})

    def move_done(self, reason: str, stall_s: float) -> None:
        label = n.move_reason(reason)
        attrs = _with(self.attrs, n.MOVE_REASON, label)
        self.telemetry.moves.add(1, attrs)
        self.telemetry.move_stall.record(max(0.0, stall_s), attrs)
        self._event(self._session, n.EVENT_MOVE_DONE, {n.MOVE_REASON: label, n.STALL: stall_s})

    def replay(self, *, replayed: int = 0, restored: int = 0, ambiguous: int = 0, skipped: int = 0) -> None:
        counts = {"replayed": replayed, "restored": restored, "ambiguous": ambiguous, "skipped": skipped}
        for kind, count in counts.items():
            if count:
                self.telemetry.replays.add(count, _with(self.attrs, n.REPLAY_KIND, kind))
        self._event(
            self._connection or self._session,
            n.EVENT_REPLAY,
            {f"livemesh.replay.{kind}": count for kind, count in counts.items()},
        )

    def reconnect(self) -> None:
        self.telemetry.reconnects.add(1, self.attrs)

    # ------------------------------------------------------------------ turns

    def _open_turn(self, now: float, start_ns: int | None) -> None:
        model = self.attrs.get(n.REQUEST_MODEL, "")
        self._turn_started_at = now
        self._turn = self._start(
            f"{n.OP_REALTIME} {model}" if model else n.OP_REALTIME,
            SpanKind.CLIENT,
            {**(self._rt_attrs or self.attrs), n.OPERATION_NAME: n.OP_REALTIME},
            start_ns,
        )

    def turn_started(self, now: float) -> None:
        if self._turn is None:
            self._turn_asked_at = now
            self._first_chunk_at = None
            self._open_turn(now, None)

    def first_chunk(self, now: float) -> None:
        if self._first_chunk_at is not None and self._turn is not None:
            return
        self._first_chunk_at = now
        if self._turn is None:
            self._turn_asked_at = None
            self._open_turn(now, None)
            return
        if self._turn_asked_at is not None:
            self.telemetry.time_to_first_chunk.record(
                max(0.0, now - self._turn_asked_at), _with(self.attrs, n.OPERATION_NAME, n.OP_REALTIME)
            )

    def _end_turn(self, now: float | None, *, interrupted: bool) -> None:
        span = self._turn
        if span is None:
            return
        self._turn = None
        self._turn_asked_at = None
        self._first_chunk_at = None
        interrupted, self._cut = interrupted or self._cut, False
        span.set_attribute(n.FINISH_REASONS, ["interrupted" if interrupted else "stop"])
        attrs = _with(self.attrs, n.OPERATION_NAME, n.OP_REALTIME)
        if now is None:  # the connection or the session ended under it
            span.set_status(Status(StatusCode.ERROR, "ended"))
            attrs[n.ERROR_TYPE] = "ended"
            span.set_attribute(n.ERROR_TYPE, "ended")
        else:
            self.telemetry.operation_duration.record(max(0.0, now - self._turn_started_at), attrs)
        span.end()

    def interrupted(self) -> None:
        if self._turn is not None:
            self._cut = True

    def turn_complete(self, now: float, *, interrupted: bool = False) -> None:
        self._end_turn(now, interrupted=interrupted)

    def usage(self, usage: wire.UsageMetadata) -> None:
        counts = token_counts(usage)
        telemetry = self.telemetry
        base = _with(self.attrs, n.OPERATION_NAME, n.OP_REALTIME)
        telemetry.token_usage.record(counts.input, {**base, n.TOKEN_TYPE: "input"})
        telemetry.token_usage.record(counts.output, {**base, n.TOKEN_TYPE: "output"})
        for modality, count in counts.input_by_modality:
            telemetry.usage_input.add(count, {**base, n.TOKEN_MODALITY: modality})
        for modality, count in counts.output_by_modality:
            telemetry.usage_output.add(count, {**base, n.TOKEN_MODALITY: modality})
        span = self._turn
        if span is not None:
            span.set_attribute(n.USAGE_INPUT, counts.input)
            span.set_attribute(n.USAGE_OUTPUT, counts.output)
            for modality, count in counts.input_by_modality:
                span.set_attribute(f"gen_ai.usage.{modality}.input_tokens", count)
            for modality, count in counts.output_by_modality:
                span.set_attribute(f"gen_ai.usage.{modality}.output_tokens", count)

    # ------------------------------------------------------------------ tools

    def tool_started(self, call_id: str, name: str, now: float) -> None:
        span = self._start(
            f"{n.OP_TOOL} {name}",
            SpanKind.INTERNAL,
            {
                **self.attrs,
                n.OPERATION_NAME: n.OP_TOOL,
                n.TOOL_NAME: name,
                n.TOOL_CALL_ID: call_id,
                n.TOOL_TYPE: "function",
            },
        )
        self._tools[call_id] = (span, now)

    def _end_tool(self, call_id: str, outcome: str, now: float | None) -> None:
        found = self._tools.pop(call_id, None)
        if found is None:
            return
        span, started = found
        label = n.tool_outcome(outcome)
        span.set_attribute(n.TOOL_OUTCOME, label)
        if label != "ok":
            span.set_attribute(n.ERROR_TYPE, label)
            span.set_status(Status(StatusCode.ERROR, label))
        if now is not None:
            self.telemetry.tool_duration.record(
                max(0.0, now - started), _with(self.attrs, n.TOOL_OUTCOME, label)
            )
        span.end()

    def tool_done(self, call_id: str, outcome: str, now: float) -> None:
        self._end_tool(call_id, outcome, now)


class OtelPoolProbe(PoolProbe):
    """A pool's hooks recording into a :class:`Telemetry` (see :class:`PoolProbe`)."""

    __slots__ = ("attrs", "key", "telemetry", "waiting")

    enabled = True

    def __init__(
        self, telemetry: Telemetry, attrs: dict[str, str], waiting: Callable[[], int] | None
    ) -> None:
        self.telemetry = telemetry
        self.attrs = attrs
        self.key = _key(attrs)
        self.waiting = waiting

    def close(self) -> None:
        with self.telemetry._lock:
            self.telemetry._pools.pop(id(self), None)

    def quota_backoff(self, delay_s: float) -> None:
        self.telemetry.quota_backoffs.add(1, self.attrs)
