"""The hooks, recorded through the OpenTelemetry API (imported only when it is installed).

:class:`Telemetry` owns the instruments and a tracer, made once from a meter provider and a
tracer provider (the global ones unless given). Its probes record into them, as cheaply as the
SDK allows (a synchronous SDK measurement costs several microseconds in Python):

* every counter is *observed*: a probe bumps a plain integer of its own at each event, and the
  totals (live sessions' plus finished ones') are read when a reader collects. Traffic is read
  from the sessions' own counters the same way, so the per-message cost is nothing at all;
* histograms (turn duration, time to first chunk, token usage, move stalls, tool latency): a
  probe queues each measurement (a tuple appended), and the queue is handed to the SDK once it
  holds :data:`BATCH` and whenever a reader collects (the observers' callbacks flush it, and the
  SDK runs those before it reads the histograms), so a reader always sees every measurement.
  Handed over in a batch, the SDK's code runs many times in a row while it is warm in the CPU's
  caches: in the bench, one measurement made alone between session work cost about 1.5 times as
  much. Attribute dicts are made once per probe;
* spans: one per logical session, a child per connection (``gen_ai.realtime_session.id``), a
  ``realtime_inference`` span per model turn and an ``execute_tool`` span per tool call, with events
  for goAways, move decisions and replays; made only while the session's own span records (an SDK
  is configured and the sampler took it). Spans are never made current (no context is attached):
  each is parented explicitly, so nothing leaks into the caller's trio tasks.

Nothing recorded is free text: attribute values are numbers, the model's name, the API flavour,
the engine, livemesh's session id, ids the server issued, tool names and names from the closed
sets in :mod:`livemesh.telemetry.names`. No exception is recorded with its message or traceback:
only its class name (``error.type``).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context, metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import SpanKind, Status, StatusCode

from livemesh.telemetry import names as n
from livemesh.telemetry.probes import PoolProbe, SessionProbe, TrafficCounters
from livemesh.telemetry.usage import add_token_counts, token_counts

if TYPE_CHECKING:
    from livemesh import wire

__all__ = ["BATCH", "Instruments", "Telemetry"]

_VERSION = "0.1.0"
_Key = tuple[str, str, str]  # (provider, model, engine)
_CLEAN_CLOSES = frozenset({1000, 1001})

BATCH = 64
"""Queued histogram measurements handed to the SDK at once (about half a millisecond of SDK work)."""

# The context a measurement is recorded in when its session is not traced: one with no span, so
# an exemplar filter links nothing (rather than whatever span is current where a batch is handed
# over). A traced session's measurements carry its turn's (or tool call's) span instead.
_UNTRACED = trace.set_span_in_context(trace.INVALID_SPAN)

# The observed counters: (name, unit, description, the attribute their label is, extra attributes).
# A probe counts ``(name, label) -> n``; a label of None adds no attribute.
_COUNTERS: tuple[tuple[str, str, str, str | None, Mapping[str, str]], ...] = (
    (
        n.SESSION_CLOSES,
        "{session}",
        "Sessions ended (error.type: the error they failed with).",
        n.ERROR_TYPE,
        {},
    ),
    (n.CONNECTIONS, "{connection}", "Connections set up.", n.RESUMED, {}),
    (n.CONNECTION_CLOSES, "{connection}", "Connections ended, by WebSocket close code.", n.CLOSE_CODE, {}),
    (n.GO_AWAYS, "{goAway}", "goAway notices received.", None, {}),
    (n.MOVES, "{move}", "Moves to a fresh connection, by reason.", n.MOVE_REASON, {}),
    (
        n.RECONNECTS,
        "{connection}",
        "Connection attempts after a session's first (moves and retries, failed ones too).",
        None,
        {},
    ),
    (n.REPLAYS, "{message}", "Input resent, restored or skipped on resumed connections.", n.REPLAY_KIND, {}),
    (n.QUOTA_BACKOFFS, "{backoff}", "Waits after the service refused for quota.", None, {}),
    (
        n.USAGE_INPUT_TOKENS,
        "{token}",
        "Input tokens used, by modality.",
        n.TOKEN_MODALITY,
        {n.OPERATION_NAME: n.OP_REALTIME},
    ),
    (
        n.USAGE_OUTPUT_TOKENS,
        "{token}",
        "Output tokens used, by modality.",
        n.TOKEN_MODALITY,
        {n.OPERATION_NAME: n.OP_REALTIME},
    ),
)


def _base(api: str, model: str, engine: str) -> dict[str, str]:
    attrs = {n.PROVIDER_NAME: n.provider(api)}
    if model:
        attrs[n.REQUEST_MODEL] = model
    if engine:
        attrs[n.ENGINE] = engine
    return attrs


def _genai(attrs: Mapping[str, str]) -> dict[str, str]:
    """``attrs`` without livemesh's own (the engine): what a ``gen_ai.*`` metric carries."""
    return {key: value for key, value in attrs.items() if key != n.ENGINE}


def _key(attrs: Mapping[str, str]) -> _Key:
    return (attrs[n.PROVIDER_NAME], attrs.get(n.REQUEST_MODEL, ""), attrs.get(n.ENGINE, ""))


class _Counted:
    """What a probe counts: ``counts[(metric, label)]``, read by the collecting thread."""

    __slots__ = ("attrs", "counts", "key")

    def __init__(self, attrs: dict[str, str]) -> None:
        self.attrs = attrs
        self.key = _key(attrs)
        self.counts: dict[tuple[str, Any], int] = {}

    def count(self, metric: str, label: Any = None, amount: int = 1) -> None:
        counts = self.counts
        key = (metric, label)
        counts[key] = counts.get(key, 0) + amount


class Instruments:
    """The instruments of one meter provider and what its observed ones read: made once per
    provider (:meth:`of`), because a provider keeps the first instrument of a name and its
    callbacks, so a second set would never be observed."""

    _made: dict[int, tuple[metrics.MeterProvider, Instruments]] = {}
    _made_lock = threading.Lock()

    @classmethod
    def of(cls, provider: metrics.MeterProvider) -> Instruments:
        """The instruments made on ``provider`` (made now on first use)."""
        with cls._made_lock:
            found = cls._made.get(id(provider))
            if found is None or found[0] is not provider:
                found = cls._made[id(provider)] = (provider, cls(provider))
            return found[1]

    def __init__(self, provider: metrics.MeterProvider) -> None:
        meter = provider.get_meter(n.SCOPE, _VERSION)
        self._lock = threading.Lock()  # readers may collect from another thread (Prometheus's)
        self._live: dict[int, OtelSessionProbe] = {}
        self._pools: dict[int, OtelPoolProbe] = {}
        self._attrs: dict[_Key, dict[str, str]] = {}
        self._retired_traffic: dict[_Key, list[int]] = {}  # bytes in, out, messages in, out
        self._retired: dict[tuple[_Key, str, Any], int] = {}  # (key, metric, label) -> total
        # Histogram measurements not yet handed to the SDK: appended on the sessions' thread,
        # taken by whichever thread flushes (deque appends and pops are atomic).
        self._pending: deque[tuple[metrics.Histogram, float, Mapping[str, Any], context.Context]] = deque()

        def histogram(
            name: str, unit: str, description: str, buckets: tuple[float, ...]
        ) -> metrics.Histogram:
            return meter.create_histogram(
                name, unit, description, explicit_bucket_boundaries_advisory=buckets
            )

        self.token_usage = histogram(
            n.TOKEN_USAGE, "{token}", "Input and output tokens per usage report.", n.TOKEN_BUCKETS
        )
        self.operation_duration = histogram(
            n.OPERATION_DURATION,
            "s",
            "A model turn: from the user's turn (or the first chunk) to turnComplete.",
            n.DURATION_BUCKETS,
        )
        self.time_to_first_chunk = histogram(
            n.TIME_TO_FIRST_CHUNK,
            "s",
            "From a user turn sent to the model's first chunk.",
            n.DURATION_BUCKETS,
        )
        self.move_stall = histogram(
            n.MOVE_STALL, "s", "How long each move held the session's input.", n.STALL_BUCKETS
        )
        self.tool_duration = histogram(
            n.TOOL_DURATION, "s", "Tool calls run by the session, by outcome.", n.STALL_BUCKETS
        )
        for name, unit, description, label, extra in _COUNTERS:
            meter.create_observable_counter(name, [self._observer(name, label, extra)], unit, description)
        meter.create_observable_up_down_counter(
            n.SESSIONS_ACTIVE, [self._observe_active], "{session}", "Sessions open now."
        )
        meter.create_observable_up_down_counter(
            n.SESSIONS_QUEUED,
            [self._observe_queued],
            "{session}",
            "Sessions waiting for admission to a pool.",
        )
        meter.create_observable_counter(
            n.TRAFFIC_BYTES, [self._traffic_observer(0)], "By", "WebSocket payload bytes, each way."
        )
        meter.create_observable_counter(
            n.TRAFFIC_MESSAGES, [self._traffic_observer(2)], "{message}", "Live API messages, each way."
        )

    # ------------------------------------------------------------------ histograms

    def record(
        self, histogram: metrics.Histogram, value: float, attrs: Mapping[str, Any], where: context.Context
    ) -> None:
        """Queue one measurement; hand the queue to the SDK once it holds :data:`BATCH`."""
        pending = self._pending
        pending.append((histogram, value, attrs, where))
        if len(pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Hand every queued measurement to the SDK (called by the observers, so before a reader
        collects the histograms)."""
        pending = self._pending
        while pending:
            try:
                histogram, value, attrs, where = pending.popleft()
            except IndexError:  # another thread took the last one
                return
            histogram.record(value, attrs, where)

    # ------------------------------------------------------------------ the registry

    def _add(self, registry: dict[int, Any], probe: OtelSessionProbe | OtelPoolProbe) -> None:
        with self._lock:
            registry[id(probe)] = probe
            self._attrs.setdefault(probe.counted.key, probe.counted.attrs)

    def _retire(self, registry: dict[int, Any], probe: OtelSessionProbe | OtelPoolProbe) -> None:
        """Fold a finished probe's counts into the totals (they only ever grow)."""
        with self._lock:
            if registry.pop(id(probe), None) is None:
                return
            counted = probe.counted
            for (metric, label), amount in counted.counts.items():
                key = (counted.key, metric, label)
                self._retired[key] = self._retired.get(key, 0) + amount
            traffic = probe.counters if isinstance(probe, OtelSessionProbe) else None
            if traffic is not None:
                totals = self._retired_traffic.setdefault(counted.key, [0, 0, 0, 0])
                _add_traffic(totals, traffic)

    def _observer(
        self, metric: str, label_key: str | None, extra: Mapping[str, str]
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            self.flush()
            totals: dict[tuple[_Key, Any], int] = {}
            with self._lock:
                for (key, name, label), amount in self._retired.items():
                    if name == metric:
                        totals[key, label] = totals.get((key, label), 0) + amount
                live = [p.counted for p in self._live.values()] + [p.counted for p in self._pools.values()]
                for counted in live:
                    for (name, label), amount in list(counted.counts.items()):
                        if name == metric:
                            totals[counted.key, label] = totals.get((counted.key, label), 0) + amount
                attrs = dict(self._attrs)
            found = []
            for (key, label), amount in totals.items():
                labels = {**_genai(attrs[key]), **extra} if metric.startswith("gen_ai.") else dict(attrs[key])
                if label_key is not None and label is not None:
                    labels[label_key] = label
                found.append(Observation(amount, labels))
            return found

        return observe

    def _observe_active(self, options: CallbackOptions) -> Iterable[Observation]:
        self.flush()
        with self._lock:
            active = dict.fromkeys(self._attrs, 0)
            for probe in self._live.values():
                active[probe.counted.key] += 1
            attrs = dict(self._attrs)
        return [Observation(count, attrs[key]) for key, count in active.items()]

    def _observe_queued(self, options: CallbackOptions) -> Iterable[Observation]:
        self.flush()
        with self._lock:
            pools = list(self._pools.values())
        queued: dict[_Key, tuple[dict[str, str], int]] = {}
        for pool in pools:
            if pool.waiting is not None:
                attrs, count = queued.get(pool.counted.key, (pool.counted.attrs, 0))
                queued[pool.counted.key] = (attrs, count + pool.waiting())
        return [Observation(count, attrs) for attrs, count in queued.values()]

    def _traffic_observer(self, first: int) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            self.flush()
            with self._lock:
                totals = {key: list(values) for key, values in self._retired_traffic.items()}
                for probe in self._live.values():
                    if probe.counters is not None:
                        _add_traffic(totals.setdefault(probe.counted.key, [0, 0, 0, 0]), probe.counters)
                attrs = dict(self._attrs)
            found = []
            for key, values in totals.items():
                found.append(Observation(values[first], {**attrs[key], n.IO_DIRECTION: "receive"}))
                found.append(Observation(values[first + 1], {**attrs[key], n.IO_DIRECTION: "transmit"}))
            return found

        return observe


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
        self.instruments = Instruments.of(meter_provider or metrics.get_meter_provider())
        self.tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer(n.SCOPE, _VERSION)

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
        """A probe for one pool, observed until its :meth:`~PoolProbe.close`.

        Args:
            model: the model its sessions talk to, if one.
            api: ``"gemini"`` or ``"vertex"``.
            engine: the WebSocket engine.
            waiting: how many sessions wait for admission now.

        Returns:
            The probe.
        """
        probe = OtelPoolProbe(self.instruments, _base(api, model, engine), waiting)
        self.instruments._add(self.instruments._pools, probe)
        return probe


def _add_traffic(totals: list[int], counters: TrafficCounters) -> None:
    totals[0] += counters.bytes_in
    totals[1] += counters.bytes_out
    totals[2] += counters.messages_in
    totals[3] += counters.messages_out


def _with(attrs: Mapping[str, Any], key: str, value: Any) -> dict[str, Any]:
    return {**attrs, key: value}


class OtelSessionProbe(SessionProbe):
    """A session's hooks recording into a :class:`Telemetry` (see :class:`SessionProbe`)."""

    __slots__ = (
        "_by_outcome",
        "_by_reason",
        "_connected",
        "_connection",
        "_connections",
        "_cut",
        "_first_chunk_at",
        "_input",
        "_op",
        "_output",
        "_rt_attrs",
        "_session",
        "_tools",
        "_tracing",
        "_turn",
        "_turn_asked_at",
        "_turn_open",
        "_turn_started_at",
        "attrs",
        "counted",
        "counters",
        "metrics",
        "session_id",
        "telemetry",
    )

    enabled = True

    def __init__(
        self, telemetry: Telemetry, session_id: str, attrs: dict[str, str], counters: TrafficCounters | None
    ) -> None:
        self.telemetry = telemetry
        self.metrics = telemetry.instruments
        self.session_id = session_id
        self.attrs = attrs
        self.counted = _Counted(attrs)
        self.counters = counters
        # Attribute dicts made once: the SDK copies what it needs from them. The gen_ai.* metrics
        # carry the conventions' attributes only (each attribute costs every measurement ~1 us).
        self._op = _with(_genai(attrs), n.OPERATION_NAME, n.OP_REALTIME)
        self._input = _with(self._op, n.TOKEN_TYPE, "input")
        self._output = _with(self._op, n.TOKEN_TYPE, "output")
        self._by_reason: dict[str, dict[str, Any]] = {}
        self._by_outcome: dict[str, dict[str, Any]] = {}
        self._tracing = False
        self._session: trace.Span | None = None
        self._connection: trace.Span | None = None
        self._connected = False
        self._connections = 0
        self._rt_attrs: dict[str, Any] = {}
        self._turn: trace.Span | None = None
        self._turn_open = False
        self._turn_asked_at: float | None = None
        self._turn_started_at = 0.0
        self._first_chunk_at: float | None = None
        self._cut = False
        self._tools: dict[str, tuple[trace.Span | None, float]] = {}

    def __repr__(self) -> str:
        return f"<OtelSessionProbe {self.session_id!r}>"

    # ------------------------------------------------------------------ helpers

    def _in(self, span: trace.Span | None) -> context.Context:
        """The context a measurement is recorded in: its span's, so exemplars point at it."""
        return _UNTRACED if span is None else trace.set_span_in_context(span)

    def _start(self, name: str, kind: SpanKind, attributes: Mapping[str, Any]) -> trace.Span:
        parent = self._turn or self._connection or self._session
        under = trace.set_span_in_context(parent) if parent is not None else None
        return self.telemetry.tracer.start_span(name, under, kind, attributes, record_exception=False)

    # ------------------------------------------------------------------ session

    def opened(self) -> None:
        if self._session is not None:
            return
        self.metrics._add(self.metrics._live, self)
        self._session = self.telemetry.tracer.start_span(
            n.SPAN_SESSION,
            kind=SpanKind.INTERNAL,
            attributes={**self.attrs, n.SESSION_ID: self.session_id},
            record_exception=False,
        )
        # Children of a span that does not record (no SDK, or not sampled) would not either:
        # skip making them at all.
        self._tracing = self._session.is_recording()

    def closed(self, error: BaseException | None = None) -> None:
        span = self._session
        if span is None:
            return
        kind = n.error_kind(error) if error is not None else None
        for call_id in list(self._tools):
            self._end_tool(call_id, "cancelled", None)
        self._end_turn(None, interrupted=True)
        self.connection_closed()
        self.counted.count(n.SESSION_CLOSES, kind)
        self._session = None
        if kind is not None:
            span.set_attribute(n.ERROR_TYPE, kind)
            span.set_status(Status(StatusCode.ERROR, kind))
        span.end()
        self.metrics._retire(self.metrics._live, self)

    # ------------------------------------------------------------------ connections

    def connection_opened(self, server_session_id: str | None = None, *, resumed: bool = False) -> None:
        if self._session is None:
            return  # not opened, or closed: its counts are no longer read
        if self._connected:
            self.connection_closed()
        self._connected = True
        self._connections += 1
        self.counted.count(n.CONNECTIONS, resumed)
        if not self._tracing:
            return
        realtime_id = server_session_id or f"{self.session_id}/{self._connections}"
        self._rt_attrs = {**self._op, n.REALTIME_SESSION_ID: realtime_id}
        self._connection = self._start(
            n.SPAN_CONNECTION,
            SpanKind.CLIENT,
            {
                **self.attrs,
                n.REALTIME_SESSION_ID: realtime_id,
                n.SESSION_ID: self.session_id,
                n.CONNECTION_INDEX: self._connections,
                n.RESUMED: resumed,
            },
        )

    def connection_closed(self, code: int | None = None) -> None:
        if not self._connected:
            return
        self._connected = False
        self._end_turn(None, interrupted=True)
        self.counted.count(n.CONNECTION_CLOSES, code)
        span, self._connection = self._connection, None
        if span is None:
            return
        if code is not None:
            span.set_attribute(n.CLOSE_CODE, code)
            if code not in _CLEAN_CLOSES:
                span.set_status(Status(StatusCode.ERROR, f"close code {code}"))
        span.end()

    def go_away(self, time_left_s: float | None) -> None:
        self.counted.count(n.GO_AWAYS)
        if self._connection is not None:
            self._connection.add_event(
                n.EVENT_GO_AWAY, {} if time_left_s is None else {n.TIME_LEFT: time_left_s}
            )

    # ------------------------------------------------------------------ moves

    def move_started(self, reason: str) -> None:
        if self._session is not None and self._tracing:
            self._session.add_event(n.EVENT_MOVE_STARTED, {n.MOVE_REASON: n.move_reason(reason)})

    def move_done(self, reason: str, stall_s: float) -> None:
        label = n.move_reason(reason)
        self.counted.count(n.MOVES, label)
        attrs = self._by_reason.get(label)
        if attrs is None:
            attrs = self._by_reason[label] = _with(self.attrs, n.MOVE_REASON, label)
        where = self._in(self._session if self._tracing else None)
        self.metrics.record(self.metrics.move_stall, max(0.0, stall_s), attrs, where)
        if self._session is not None and self._tracing:
            self._session.add_event(n.EVENT_MOVE_DONE, {n.MOVE_REASON: label, n.STALL: stall_s})

    def replay(self, *, replayed: int = 0, restored: int = 0, ambiguous: int = 0, skipped: int = 0) -> None:
        counts = {"replayed": replayed, "restored": restored, "ambiguous": ambiguous, "skipped": skipped}
        for kind, count in counts.items():
            if count:
                self.counted.count(n.REPLAYS, kind, count)
        span = self._connection or self._session
        if span is not None and self._tracing:
            span.add_event(
                n.EVENT_REPLAY, {f"livemesh.replay.{kind}": count for kind, count in counts.items()}
            )

    def reconnect(self) -> None:
        self.counted.count(n.RECONNECTS)

    # ------------------------------------------------------------------ turns

    def _open_turn(self, now: float) -> None:
        self._turn_open = True
        self._turn_started_at = now
        if self._tracing:
            model = self.attrs.get(n.REQUEST_MODEL, "")
            name = f"{n.OP_REALTIME} {model}" if model else n.OP_REALTIME
            self._turn = self._start(name, SpanKind.CLIENT, self._rt_attrs or self._op)

    def turn_started(self, now: float) -> None:
        if not self._turn_open and self._session is not None:
            self._turn_asked_at = now
            self._first_chunk_at = None
            self._open_turn(now)

    def first_chunk(self, now: float) -> None:
        if not self._turn_open:
            if self._session is None:
                return
            self._turn_asked_at = None
            self._first_chunk_at = now
            self._open_turn(now)
        elif self._first_chunk_at is None:
            self._first_chunk_at = now
            if self._turn_asked_at is not None:
                took = max(0.0, now - self._turn_asked_at)
                self.metrics.record(self.metrics.time_to_first_chunk, took, self._op, self._in(self._turn))

    def _end_turn(self, now: float | None, *, interrupted: bool) -> None:
        if not self._turn_open:
            return
        self._turn_open = False
        self._turn_asked_at = None
        self._first_chunk_at = None
        interrupted, self._cut = interrupted or self._cut, False
        span, self._turn = self._turn, None
        if now is not None:
            took = max(0.0, now - self._turn_started_at)
            self.metrics.record(self.metrics.operation_duration, took, self._op, self._in(span))
        if span is None:
            return
        span.set_attribute(n.FINISH_REASONS, ["interrupted" if interrupted else "stop"])
        if now is None:  # the connection or the session ended under it
            span.set_attribute(n.ERROR_TYPE, "ended")
            span.set_status(Status(StatusCode.ERROR, "ended"))
        span.end()

    def interrupted(self) -> None:
        if self._turn_open:
            self._cut = True

    def turn_complete(self, now: float, *, interrupted: bool = False) -> None:
        self._end_turn(now, interrupted=interrupted)

    def usage(self, usage: wire.UsageMetadata) -> None:
        tokens_in, tokens_out = add_token_counts(
            usage, self.counted.counts, n.USAGE_INPUT_TOKENS, n.USAGE_OUTPUT_TOKENS
        )
        span = self._turn
        where = self._in(span)
        self.metrics.record(self.metrics.token_usage, tokens_in, self._input, where)
        self.metrics.record(self.metrics.token_usage, tokens_out, self._output, where)
        if span is not None:
            counts = token_counts(usage)
            found: dict[str, int] = {n.USAGE_INPUT: counts.input, n.USAGE_OUTPUT: counts.output}
            for modality, count in counts.input_by_modality:
                found[f"gen_ai.usage.{modality}.input_tokens"] = count
            for modality, count in counts.output_by_modality:
                found[f"gen_ai.usage.{modality}.output_tokens"] = count
            span.set_attributes(found)

    # ------------------------------------------------------------------ tools

    def tool_started(self, call_id: str, name: str, now: float) -> None:
        if self._session is None:
            return
        span = None
        if self._tracing:
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
        if now is not None:
            attrs = self._by_outcome.get(label)
            if attrs is None:
                attrs = self._by_outcome[label] = _with(self.attrs, n.TOOL_OUTCOME, label)
            self.metrics.record(self.metrics.tool_duration, max(0.0, now - started), attrs, self._in(span))
        if span is None:
            return
        span.set_attribute(n.TOOL_OUTCOME, label)
        if label != "ok":
            span.set_attribute(n.ERROR_TYPE, label)
            span.set_status(Status(StatusCode.ERROR, label))
        span.end()

    def tool_done(self, call_id: str, outcome: str, now: float) -> None:
        self._end_tool(call_id, outcome, now)


class OtelPoolProbe(PoolProbe):
    """A pool's hooks recording into a :class:`Telemetry` (see :class:`PoolProbe`)."""

    __slots__ = ("counted", "metrics", "waiting")

    enabled = True

    def __init__(
        self, metrics: Instruments, attrs: dict[str, str], waiting: Callable[[], int] | None
    ) -> None:
        self.metrics = metrics
        self.counted = _Counted(attrs)
        self.waiting = waiting

    def close(self) -> None:
        self.metrics._retire(self.metrics._pools, self)

    def quota_backoff(self, delay_s: float) -> None:
        self.counted.count(n.QUOTA_BACKOFFS)
