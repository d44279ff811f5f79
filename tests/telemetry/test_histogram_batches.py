"""Histogram measurements are queued and handed to the SDK in batches: a reader still sees every
one whenever it collects, once, and an exemplar points at the measurement's own span (or at none)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from livemesh import telemetry
from livemesh.telemetry import names as n
from livemesh.telemetry.otel import BATCH
from tests.telemetry.conftest import Recorded


def _turns(probe: telemetry.SessionProbe, count: int, start: float = 0.0) -> None:
    for i in range(count):
        now = start + i
        probe.turn_started(now)
        probe.first_chunk(now + 0.25)
        probe.turn_complete(now + 0.5)


def _durations(reader: InMemoryMetricReader) -> list[HistogramDataPoint]:
    data = reader.get_metrics_data()
    assert data is not None
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == n.OPERATION_DURATION
        for point in metric.data.data_points
        if isinstance(point, HistogramDataPoint)
    ]


def test_a_reader_sees_every_measurement_whenever_it_collects_and_once(recorded: Recorded) -> None:
    probe = telemetry.session_probe("s1", model="m-live")
    probe.opened()
    _turns(probe, 1)
    (point,) = _durations(recorded.reader)
    assert (point.count, point.sum) == (1, 0.5)  # fewer than a batch: handed over by the collection

    _turns(probe, 2 * BATCH + 3, start=10.0)  # two whole batches and a part
    (point,) = _durations(recorded.reader)
    assert point.count == 2 * BATCH + 4
    (point,) = _durations(recorded.reader)
    assert point.count == 2 * BATCH + 4  # collecting again counts nothing twice
    probe.closed()


def test_an_exemplar_points_at_the_turn_span(recorded: Recorded) -> None:
    probe = telemetry.session_probe("s1", model="m-live")
    probe.opened()
    probe.connection_opened("srv-1")
    _turns(probe, 1)
    (point,) = _durations(recorded.reader)
    probe.closed()

    turn = recorded.span("realtime_inference m-live")
    assert turn.context is not None
    (exemplar,) = point.exemplars
    assert (exemplar.trace_id, exemplar.span_id) == (turn.context.trace_id, turn.context.span_id)


@pytest.fixture
def untraced() -> Iterator[InMemoryMetricReader]:
    """Metrics recorded (default exemplar filter: trace-based), livemesh's spans not sampled."""
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    saved = (telemetry._State.telemetry, telemetry._State.disabled)
    try:
        telemetry.install(meters, TracerProvider(sampler=ALWAYS_OFF))
        yield reader
    finally:
        telemetry._State.telemetry, telemetry._State.disabled = saved
        meters.shutdown()


def test_an_untraced_session_links_no_exemplar_to_a_span_current_around_it(
    untraced: InMemoryMetricReader,
) -> None:
    # A sampled span of the application's is current where the hooks run (and where a batch would
    # be handed over): it is not the turn's, so no exemplar may point at it.
    with TracerProvider().get_tracer("app").start_as_current_span("request"):
        probe = telemetry.session_probe("s1", model="m-live")
        probe.opened()
        _turns(probe, BATCH + 1)
        (point,) = _durations(untraced)
        probe.closed()
    assert point.count == BATCH + 1
    assert not point.exemplars
