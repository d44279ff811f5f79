"""Serve livemesh's metrics for Prometheus, through the OpenTelemetry Prometheus exporter.

Needs the OpenTelemetry SDK and its Prometheus exporter besides the ``otel`` extra
(``pip install 'livemesh[otel]' opentelemetry-sdk opentelemetry-exporter-prometheus``). An
application that already configures OpenTelemetry does not need this module: it adds a
``PrometheusMetricReader`` to its own ``MeterProvider`` and livemesh's metrics are among the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from livemesh.errors import ConfigError

__all__ = ["MISSING_EXPORTER", "serve_prometheus"]

MISSING_EXPORTER = (
    "serving metrics needs the OpenTelemetry SDK and Prometheus exporter: "
    "python -m pip install 'livemesh[otel]' opentelemetry-sdk opentelemetry-exporter-prometheus"
)


@contextmanager
def serve_prometheus(port: int, addr: str = "127.0.0.1", *, tracer_provider: Any = None) -> Iterator[int]:
    """Record livemesh's metrics into a fresh SDK ``MeterProvider`` and serve them on
    ``http://addr:port/metrics`` while the block runs; on exit the server stops and the previous
    telemetry setting is restored.

    The HTTP server is ``prometheus_client``'s, in a thread of its own (it answers scrapes while
    the trio thread runs sessions); it serves a registry of its own, not the process-wide one.

    Args:
        port: the TCP port (0: any free one).
        addr: the address to listen on (loopback by default: metrics name models and session ids).
        tracer_provider: where spans go meanwhile (None: the global tracer provider).

    Yields:
        The port the server is bound to.

    Raises:
        ConfigError: the SDK or the exporter is not installed.
        OSError: the port cannot be bound.
    """
    from livemesh import telemetry

    try:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
        from prometheus_client import CollectorRegistry, start_http_server
    except ImportError:
        raise ConfigError(MISSING_EXPORTER) from None
    registry = CollectorRegistry()
    reader = PrometheusMetricReader(registry=registry)
    # The exporter carries no exemplars: with the default (trace-based) filter, every measurement
    # made under a sampled span would fill an exemplar reservoir nobody reads.
    provider = MeterProvider(metric_readers=[reader], exemplar_filter=AlwaysOffExemplarFilter())
    server, thread = start_http_server(port, addr, registry=registry)
    saved = (telemetry._State.telemetry, telemetry._State.disabled)
    try:
        telemetry.install(provider, tracer_provider)
        yield int(server.server_port)
    finally:
        telemetry._State.telemetry, telemetry._State.disabled = saved
        server.shutdown()
        server.server_close()
        thread.join()
        provider.shutdown()
