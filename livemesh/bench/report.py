"""The bench's results: the JSON report (fixed keys) and the summary table (rich).

One client's result has exactly :data:`RESULT_KEYS` (issue 7). With ``--vs genai`` the JSON is
``{"results": [livemesh, genai], "ratios": {...}}``; each ratio is livemesh / genai for "more is
better" figures (``turns_per_s``, ``audio_messages_per_s``, ``messages_per_s``) and genai /
livemesh for "less is better" ones (``p99_turn_latency``, ``cpu_per_message``), so > 1 always
means livemesh is ahead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from rich.console import Console
from rich.table import Table

__all__ = [
    "RESULT_KEYS",
    "failed",
    "ratios",
    "render_table",
    "write_json",
]

RESULT_KEYS: Final = (
    "client",
    "sessions",
    "duration_s",
    "turns",
    "messages_sent",
    "messages_received",
    "bytes_sent",
    "bytes_received",
    "rotations",
    "reconnects",
    "lost",
    "duplicated",
    "errors",
    "turn_latency_ms",
    "first_response_ms",
    "chunk_lag_ms",
    "client_cpu_s",
    "client_rss_mb",
)
"""Every key of one client's result, in order (nested: turn_latency_ms {p50,p90,p99,max},
first_response_ms {p50,p99}, chunk_lag_ms {p50,p99})."""


def failed(result: Mapping[str, Any]) -> bool:
    """Anything lost, duplicated or errored (the CLI then exits non-zero)."""
    return bool(result["lost"] or result["duplicated"] or result["errors"])


def _rate(result: Mapping[str, Any], key: str, details: Mapping[str, Any] | None = None) -> float:
    source = details if details is not None else result
    duration = float(result["duration_s"]) or 1.0
    return float(source.get(key, 0)) / duration


def _cpu_per_message_us(result: Mapping[str, Any]) -> float:
    messages = int(result["messages_sent"]) + int(result["messages_received"])
    return float(result["client_cpu_s"]) / messages * 1e6 if messages else 0.0


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def ratios(
    ours: Mapping[str, Any],
    theirs: Mapping[str, Any],
    ours_details: Mapping[str, Any],
    theirs_details: Mapping[str, Any],
) -> dict[str, float | None]:
    """livemesh relative to genai; > 1 means livemesh is better (see the module docstring)."""
    return {
        "turns_per_s": _ratio(_rate(ours, "turns"), _rate(theirs, "turns")),
        "audio_messages_per_s": _ratio(
            _rate(ours, "audio_messages_sent", ours_details),
            _rate(theirs, "audio_messages_sent", theirs_details),
        ),
        "messages_per_s": _ratio(
            _rate(ours, "messages_sent") + _rate(ours, "messages_received"),
            _rate(theirs, "messages_sent") + _rate(theirs, "messages_received"),
        ),
        "p99_turn_latency": _ratio(theirs["turn_latency_ms"]["p99"], ours["turn_latency_ms"]["p99"]),
        "cpu_per_message": _ratio(_cpu_per_message_us(theirs), _cpu_per_message_us(ours)),
    }


def write_json(path: str, results: Sequence[Mapping[str, Any]], ratio: Mapping[str, Any] | None) -> None:
    """One result as itself; two (``--vs``) as ``{"results": [...], "ratios": {...}}``."""
    if len(results) == 1 and ratio is None:
        doc: Any = dict(results[0])
    else:
        doc = {"results": [dict(r) for r in results], "ratios": dict(ratio or {})}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


def _rows(result: Mapping[str, Any], details: Mapping[str, Any]) -> list[tuple[str, str]]:
    lat, first, lag = result["turn_latency_ms"], result["first_response_ms"], result["chunk_lag_ms"]
    msgs = int(result["messages_sent"]) + int(result["messages_received"])
    return [
        ("sessions", f"{result['sessions']}"),
        ("duration", f"{result['duration_s']:.1f} s"),
        ("turns", f"{result['turns']:,} ({_rate(result, 'turns'):,.1f}/s)"),
        (
            "audio messages sent",
            f"{details.get('audio_messages_sent', 0):,} "
            f"({_rate(result, 'audio_messages_sent', details):,.1f}/s)",
        ),
        ("messages sent / received", f"{result['messages_sent']:,} / {result['messages_received']:,}"),
        ("messages/s (both ways)", f"{msgs / (float(result['duration_s']) or 1.0):,.0f}"),
        ("MB sent / received", f"{result['bytes_sent'] / 1e6:,.1f} / {result['bytes_received'] / 1e6:,.1f}"),
        ("rotations / reconnects", f"{result['rotations']} / {result['reconnects']}"),
        ("rotations per session (min)", f"{details.get('min_session_rotations', 0)}"),
        ("lost / duplicated / errors", f"{result['lost']} / {result['duplicated']} / {result['errors']}"),
        ("sessions verified", f"{details.get('sessions_verified', 0)} / {result['sessions']}"),
        (
            "turn latency p50/p90/p99/max",
            f"{lat['p50']:.1f} / {lat['p90']:.1f} / {lat['p99']:.1f} / {lat['max']:.1f} ms",
        ),
        ("first response p50/p99", f"{first['p50']:.1f} / {first['p99']:.1f} ms"),
        ("audio chunk lag p50/p99", f"{lag['p50']:.1f} / {lag['p99']:.1f} ms"),
        ("client CPU", f"{result['client_cpu_s']:.1f} s ({_cpu_per_message_us(result):.0f} us/message)"),
        ("client RSS (peak)", f"{result['client_rss_mb']:.0f} MB"),
        ("emulator CPU", f"{details['server_cpu_s']:.1f} s" if "server_cpu_s" in details else "n/a"),
    ]


def render_table(
    console: Console,
    results: Sequence[Mapping[str, Any]],
    details: Sequence[Mapping[str, Any]],
    ratio: Mapping[str, float | None] | None = None,
    *,
    title: str = "livemesh bench",
) -> None:
    """One column per client; with ``ratio``, the ratios under it; then any error samples."""
    table = Table(title=title)
    table.add_column("")
    for result in results:
        table.add_column(str(result["client"]), justify="right")
    columns = [_rows(r, d) for r, d in zip(results, details, strict=True)]
    for i, (name, _) in enumerate(columns[0]):
        cells = [col[i][1] for col in columns]
        bad = name.startswith("lost") and any(failed(r) for r in results)
        table.add_row(f"[red]{name}[/red]" if bad else name, *cells)
    console.print(table)
    if ratio:
        rt = Table(title="livemesh / google-genai (> 1 = livemesh better)")
        rt.add_column("figure")
        rt.add_column("ratio", justify="right")
        for key, value in ratio.items():
            rt.add_row(key, "n/a" if value is None else f"{value:.2f}x")
        console.print(rt)
    for result, detail in zip(results, details, strict=True):
        for key, what in (("error_samples", "problems"), ("extra_samples", "extra turns")):
            samples = detail.get(key) or []
            if samples:
                console.print(f"[red]{result['client']}: {what} (first {len(samples)}):[/red]")
                for text in samples:
                    console.print(f"  {text}", markup=False, soft_wrap=True)
