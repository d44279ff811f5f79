"""Fixtures: livemesh's telemetry recording into the OpenTelemetry SDK's in-memory reader and
span exporter, and helpers that turn what they hold into plain values to compare."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from livemesh import telemetry
from livemesh.telemetry.otel import Telemetry

Labels = frozenset[tuple[str, Any]]


@attrs.frozen
class Histogram:
    count: int
    sum: float


@attrs.define
class Recorded:
    """What the telemetry under test recorded: metric points and finished spans."""

    telemetry: Telemetry
    reader: InMemoryMetricReader
    exporter: InMemorySpanExporter
    telemetry_meters: MeterProvider

    def metrics(self) -> dict[str, dict[Labels, int | float | Histogram]]:
        """{metric name: {attributes: value}}, values as of now (cumulative)."""
        found: dict[str, dict[Labels, int | float | Histogram]] = {}
        data = self.reader.get_metrics_data()
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    points = found.setdefault(metric.name, {})
                    for point in metric.data.data_points:
                        labels = frozenset((point.attributes or {}).items())
                        if isinstance(point, HistogramDataPoint):
                            points[labels] = Histogram(point.count, point.sum)
                        else:
                            assert isinstance(point, NumberDataPoint)
                            points[labels] = point.value
        return found

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        (found,) = [s for s in self.spans() if s.name == name]
        return found


def labels(**kwargs: Any) -> Labels:
    """Attributes as the metrics helper keys them (dots spelled as double underscores)."""
    return frozenset((key.replace("__", "."), value) for key, value in kwargs.items())


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    exporter = InMemorySpanExporter()
    tracers = TracerProvider()
    tracers.add_span_processor(SimpleSpanProcessor(exporter))
    saved = (telemetry._State.telemetry, telemetry._State.disabled)
    try:
        yield Recorded(telemetry.install(meters, tracers), reader, exporter, meters)
    finally:
        telemetry._State.telemetry, telemetry._State.disabled = saved
        meters.shutdown()
        tracers.shutdown()


def strings_recorded(recorded: Recorded) -> list[str]:
    """Every string the telemetry exported: span names, status texts, attribute keys and values
    (spans, events, metric points), each as ``repr`` so a value inside a sequence counts too."""
    found: list[str] = []
    for span in recorded.spans():
        found.append(span.name)
        found.append(span.status.description or "")
        for key, value in (span.attributes or {}).items():
            found += [key, repr(value)]
        for event in span.events:
            found.append(event.name)
            for key, value in (event.attributes or {}).items():
                found += [key, repr(value)]
    for points in recorded.metrics().values():
        for point_labels in points:
            for key, value in point_labels:
                found += [key, repr(value)]
    return found


def assert_never_recorded(recorded: Recorded, *sentinels: str) -> None:
    leaks = [(s, text) for text in strings_recorded(recorded) for s in sentinels if s in text]
    assert not leaks, leaks
