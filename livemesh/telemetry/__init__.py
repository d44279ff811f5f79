"""OpenTelemetry metrics and traces for sessions, connections, moves, turns and tools.

Install the extra (``pip install 'livemesh[otel]'``, the OpenTelemetry API) and configure an
OpenTelemetry SDK as usual: livemesh's sessions and pools record into the global meter and tracer
providers, like any instrumented library. Without the extra, every hook is a shared no-op object
(:data:`NOOP_SESSION`): one method call that does nothing.

The session and the pool ask for a probe when they start (:func:`session_probe`,
:func:`pool_probe`) and call it at their decision points. :func:`install` picks other providers
(tests, the bench); :func:`disable` turns recording off for sessions started afterwards;
:func:`serve_prometheus` serves the metrics for Prometheus to scrape.

The metric names, units and attributes are listed in the documentation's Observability page and
defined in :mod:`livemesh.telemetry.names`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from livemesh.errors import ConfigError
from livemesh.telemetry.probes import NOOP_POOL, NOOP_SESSION, PoolProbe, SessionProbe, TrafficCounters

if TYPE_CHECKING:
    from livemesh.telemetry.otel import Telemetry

__all__ = [
    "NOOP_POOL",
    "NOOP_SESSION",
    "PoolProbe",
    "SessionProbe",
    "TrafficCounters",
    "available",
    "current",
    "disable",
    "install",
    "pool_probe",
    "serve_prometheus",
    "session_probe",
]

MISSING = "OpenTelemetry is not installed: python -m pip install 'livemesh[otel]'"


class _State:
    """The one switch: which :class:`Telemetry` records, if any (module state, set by the
    application: sessions already running keep the probe they started with)."""

    available: bool | None = None  # None: not looked for yet (the import is tried once)
    telemetry: Telemetry | None = None
    disabled = False


def available() -> bool:
    """Whether the OpenTelemetry API can be imported (looked for once, on the first call).

    Returns:
        True if ``opentelemetry`` (the ``otel`` extra) is installed.
    """
    if _State.available is None:
        try:
            import opentelemetry.metrics
            import opentelemetry.trace  # noqa: F401
        except ImportError:
            _State.available = False
        else:
            _State.available = True
    return _State.available


def install(meter_provider: Any = None, tracer_provider: Any = None) -> Telemetry:
    """Record into these providers from now on (sessions and pools started afterwards).

    Args:
        meter_provider: an OpenTelemetry ``MeterProvider``; None for the global one.
        tracer_provider: an OpenTelemetry ``TracerProvider``; None for the global one.

    Returns:
        The :class:`~livemesh.telemetry.otel.Telemetry` now in use.

    Raises:
        ConfigError: OpenTelemetry is not installed.
    """
    if not available():
        raise ConfigError(MISSING)
    from livemesh.telemetry.otel import Telemetry

    _State.telemetry = Telemetry(meter_provider, tracer_provider)
    _State.disabled = False
    return _State.telemetry


def disable() -> None:
    """Stop recording: sessions and pools started from now on get the no-op probes (until
    :func:`install`)."""
    _State.telemetry = None
    _State.disabled = True


def current() -> Telemetry | None:
    """The :class:`~livemesh.telemetry.otel.Telemetry` new probes record into, if any (made with
    the global providers on first use when OpenTelemetry is installed and not disabled).

    Returns:
        The telemetry in use, or None while telemetry is off.
    """
    if _State.telemetry is None and not _State.disabled and available():
        from livemesh.telemetry.otel import Telemetry

        _State.telemetry = Telemetry()
    return _State.telemetry


def session_probe(
    session_id: str,
    *,
    model: str,
    api: str = "gemini",
    engine: str = "",
    counters: TrafficCounters | None = None,
) -> SessionProbe:
    """The probe a new session calls (:data:`NOOP_SESSION` while telemetry is off).

    Args:
        session_id: livemesh's id for the session.
        model: the model it talks to.
        api: ``"gemini"`` or ``"vertex"``.
        engine: the WebSocket engine.
        counters: the session's traffic counters (bytes and messages each way), read when a
            reader collects.

    Returns:
        A probe; call its :meth:`~SessionProbe.opened` when the session starts.
    """
    telemetry = current()
    if telemetry is None:
        return NOOP_SESSION
    return telemetry.session(session_id, model=model, api=api, engine=engine, counters=counters)


def pool_probe(
    *, model: str = "", api: str = "gemini", engine: str = "", waiting: Callable[[], int] | None = None
) -> PoolProbe:
    """The probe a new pool calls (:data:`NOOP_POOL` while telemetry is off).

    Args:
        model: the model its sessions talk to, if one.
        api: ``"gemini"`` or ``"vertex"``.
        engine: the WebSocket engine.
        waiting: how many sessions wait for admission now (read when a reader collects, maybe
            from another thread: it must only read a number), until :meth:`PoolProbe.close`.

    Returns:
        A probe.
    """
    telemetry = current()
    if telemetry is None:
        return NOOP_POOL
    return telemetry.pool(model=model, api=api, engine=engine, waiting=waiting)


def serve_prometheus(port: int, addr: str = "127.0.0.1") -> Any:
    """Serve the metrics on ``http://addr:port/metrics`` for Prometheus (see
    :func:`livemesh.telemetry.prometheus.serve_prometheus`).

    Args:
        port: the TCP port (0: any free one).
        addr: the address to listen on.

    Returns:
        A context manager that yields the bound port.
    """
    from livemesh.telemetry.prometheus import serve_prometheus as serve

    return serve(port, addr)
