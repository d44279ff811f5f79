"""What a bench runner measures, independent of the async library driving the sessions.

Both runners (trio for livemesh, asyncio for google-genai) feed one :class:`Recorder`, so the two
columns of a ``--vs genai`` table are computed by the same code. Latencies are recorded in
microseconds into HDR histograms (``hdrhistogram``): constant memory and a constant-cost percentile,
instead of keeping and sorting every sample. Timestamps are monotonic (``time.perf_counter``) and
taken at the client, as a user of either library would see them.
"""

from __future__ import annotations

import os
import resource
import time
from typing import Any, Final

import attrs
from hdrh.histogram import HdrHistogram

__all__ = ["MAX_ERROR_SAMPLES", "Recorder", "cpu_seconds", "rss_mb"]

_HIGHEST_US: Final = 3_600_000_000
"""One hour in microseconds: anything slower is clamped (and is a failure anyway)."""

MAX_ERROR_SAMPLES: Final = 20
"""Distinct error texts kept for the report; the count keeps going."""

_PAGE_SIZE: Final = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (both cores count)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mb() -> float:
    """Resident set size of this process now, in MiB (``/proc/self/statm``; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            resident_pages = int(f.read().split()[1])
        return resident_pages * _PAGE_SIZE / (1024 * 1024)
    except (OSError, ValueError, IndexError):  # not Linux: the peak is the best we have
        return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def _histogram() -> HdrHistogram:
    return HdrHistogram(1, _HIGHEST_US, 3)


def _record(hist: HdrHistogram, seconds: float) -> None:
    hist.record_value(min(_HIGHEST_US, max(1, round(seconds * 1e6))))


def _ms(hist: HdrHistogram, percentile: float) -> float:
    if hist.get_total_count() == 0:
        return 0.0
    return round(float(hist.get_value_at_percentile(percentile)) / 1000, 3)


@attrs.define
class Recorder:
    """Counters and histograms of one runner process; single-threaded, updated synchronously.

    ``lost`` / ``duplicated`` are only ever incremented from a session's final check against the
    emulator's ``recall`` / ``stats`` answers (see :mod:`livemesh.bench.workload`), never guessed.
    """

    turns: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    audio_messages_sent: int = 0
    rotations: int = 0
    reconnects: int = 0
    lost: int = 0
    duplicated: int = 0
    errors: int = 0
    sessions_active: int = 0
    sessions_done: int = 0
    sessions_verified: int = 0
    extra_turns: int = 0
    bytes_counted: bool = True
    """False for a client whose library offers no public way to count bytes on its socket (its
    ``bytes_sent``/``bytes_received`` are then reported as ``None``, shown as n/a, never as 0)."""
    min_session_rotations: int | None = None
    """The fewest planned moves any session made (the default run wants >= 1 for every session)."""
    """Turns the client saw that answered nothing it asked in that moment (a doubled turn's echo)."""
    error_samples: list[str] = attrs.Factory(list)
    extra_samples: list[str] = attrs.Factory(list)
    turn_latency: HdrHistogram = attrs.field(factory=_histogram, repr=False)
    first_response: HdrHistogram = attrs.field(factory=_histogram, repr=False)
    chunk_lag: HdrHistogram = attrs.field(factory=_histogram, repr=False)
    started_at: float = attrs.field(factory=time.perf_counter)
    cpu_at_start: float = attrs.field(factory=cpu_seconds)
    peak_rss_mb: float = 0.0
    _frozen: dict[str, Any] | None = None

    _TRAFFIC = (
        "turns",
        "messages_sent",
        "messages_received",
        "bytes_sent",
        "bytes_received",
        "audio_messages_sent",
        "rotations",
        "reconnects",
    )

    def freeze_traffic(self) -> None:
        """End of the traffic phase: duration, CPU and traffic counters are fixed now.

        The final ``stats`` checks come after (an audio session's answer is spoken, so it is big);
        they still count lost/duplicated/errors but not throughput, CPU or bytes.
        """
        if self._frozen is None:
            self.sample_rss()
            self._frozen = {name: getattr(self, name) for name in self._TRAFFIC}
            self._frozen["elapsed"] = time.perf_counter() - self.started_at
            self._frozen["cpu"] = cpu_seconds() - self.cpu_at_start

    def turn_done(self, latency_s: float) -> None:
        self.turns += 1
        _record(self.turn_latency, latency_s)

    def first_chunk(self, latency_s: float) -> None:
        _record(self.first_response, latency_s)

    def audio_lag(self, lag_s: float) -> None:
        """How late an audio chunk went out compared with its real-time schedule."""
        _record(self.chunk_lag, lag_s)

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES and text not in self.error_samples:
            self.error_samples.append(text)

    def session_rotated(self, rotations: int) -> None:
        """A finished session's own rotation count."""
        if self.min_session_rotations is None or rotations < self.min_session_rotations:
            self.min_session_rotations = rotations

    def note(self, text: str) -> None:
        """Keep a loss/duplication finding for the report (counted apart, in lost/duplicated)."""
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(text)

    def extra_turn(self, text: str) -> None:
        """A turn that answered nothing asked at that moment (kept apart: it floods otherwise)."""
        self.extra_turns += 1
        if len(self.extra_samples) < MAX_ERROR_SAMPLES // 2:
            self.extra_samples.append(text)

    def sample_rss(self) -> float:
        now = rss_mb()
        self.peak_rss_mb = max(self.peak_rss_mb, now)
        return now

    def restart_clock(self) -> None:
        """Start timing now (after imports and process start-up, which are not the workload)."""
        self.started_at = time.perf_counter()
        self.cpu_at_start = cpu_seconds()

    def progress(self) -> dict[str, Any]:
        """A cheap snapshot for the live display (no percentiles)."""
        return {
            "elapsed_s": round(time.perf_counter() - self.started_at, 3),
            "sessions_active": self.sessions_active,
            "sessions_done": self.sessions_done,
            "turns": self.turns,
            "messages_sent": self.messages_sent,
            "messages_received": self.messages_received,
            "rotations": self.rotations,
            "reconnects": self.reconnects,
            "errors": self.errors,
        }

    def result(self, *, client: str, sessions: int, duration_s: float | None = None) -> dict[str, Any]:
        """Exactly the report's keys (:data:`~livemesh.bench.report.RESULT_KEYS`); see
        :meth:`details` for what the table adds."""
        self.sample_rss()
        frozen = self._frozen or {name: getattr(self, name) for name in self._TRAFFIC}
        elapsed = frozen.get("elapsed", time.perf_counter() - self.started_at)
        if duration_s is not None:
            elapsed = duration_s
        cpu = frozen.get("cpu", cpu_seconds() - self.cpu_at_start)
        return {
            "client": client,
            "sessions": sessions,
            "duration_s": round(elapsed, 3),
            "turns": frozen["turns"],
            "messages_sent": frozen["messages_sent"],
            "messages_received": frozen["messages_received"],
            "bytes_sent": frozen["bytes_sent"] if self.bytes_counted else None,
            "bytes_received": frozen["bytes_received"] if self.bytes_counted else None,
            "rotations": frozen["rotations"],
            "reconnects": frozen["reconnects"],
            "lost": self.lost,
            "duplicated": self.duplicated,
            "errors": self.errors,
            "turn_latency_ms": {
                "p50": _ms(self.turn_latency, 50),
                "p90": _ms(self.turn_latency, 90),
                "p99": _ms(self.turn_latency, 99),
                "max": round(self.turn_latency.get_max_value() / 1000, 3)
                if self.turn_latency.get_total_count()
                else 0.0,
            },
            "first_response_ms": {"p50": _ms(self.first_response, 50), "p99": _ms(self.first_response, 99)},
            "chunk_lag_ms": {"p50": _ms(self.chunk_lag, 50), "p99": _ms(self.chunk_lag, 99)},
            "client_cpu_s": round(cpu, 3),
            "client_rss_mb": round(self.peak_rss_mb, 1),
        }

    def details(self) -> dict[str, Any]:
        """Figures beyond the report's fixed keys: audio messages (a throughput target), checks done."""
        frozen = self._frozen or {}
        return {
            "audio_messages_sent": frozen.get("audio_messages_sent", self.audio_messages_sent),
            "sessions_verified": self.sessions_verified,
            "extra_turns": self.extra_turns,
            "min_session_rotations": self.min_session_rotations or 0,
            "error_samples": list(self.error_samples),
            "extra_samples": list(self.extra_samples),
        }
