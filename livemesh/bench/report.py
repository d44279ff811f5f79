"""The bench's results: the JSON report (fixed keys) and the summary table (rich).

One client's result has exactly :data:`RESULT_KEYS`, so scripts can rely on them. With
``--vs genai`` the JSON is ``{"results": [livemesh, genai], "ratios": {...}}``; each ratio is
livemesh / genai for "more is better" figures (``turns_per_s``, ``audio_messages_per_s``,
``messages_per_s``) and genai / livemesh for "less is better" ones (``p99_turn_latency``,
``cpu_per_message``), so > 1 always means livemesh is ahead.
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
    "merge_rounds",
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


_SUMMED: Final = (
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
    "client_cpu_s",
)


def _megabytes(result: Mapping[str, Any]) -> str:
    sent, received = result["bytes_sent"], result["bytes_received"]
    if sent is None or received is None:
        return "n/a (the client library offers no public byte count)"
    return f"{sent / 1e6:,.1f} / {received / 1e6:,.1f}"


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def merge_rounds(
    rounds: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One client's ``(result, details)`` over several rounds (``--rounds``): counters, durations and
    CPU summed (so rates are totals over totals), peak RSS the largest, latency percentiles the
    median of the rounds' (each round's come from its own histogram), sessions verified the worst
    round's (of ``sessions``). Same keys as one round."""
    first, first_details = rounds[0]
    merged: dict[str, Any] = {key: first[key] for key in RESULT_KEYS}
    for key in _SUMMED:
        if any(r[key] is None for r, _ in rounds):  # not measured (e.g. bytes of a closed client)
            merged[key] = None
            continue
        merged[key] = round(sum(float(r[key]) for r, _ in rounds), 3)
        if all(isinstance(r[key], int) for r, _ in rounds):
            merged[key] = int(merged[key])
    merged["client_rss_mb"] = max(float(r["client_rss_mb"]) for r, _ in rounds)
    for key in ("turn_latency_ms", "first_response_ms", "chunk_lag_ms"):
        merged[key] = {
            name: round(_median([float(r[key][name]) for r, _ in rounds]), 3) for name in first[key]
        }
    details: dict[str, Any] = dict(first_details)
    for key in ("audio_messages_sent", "extra_turns", "server_cpu_s"):
        if all(key in d for _, d in rounds):
            details[key] = round(sum(float(d[key]) for _, d in rounds), 2)
            if all(isinstance(d[key], int) for _, d in rounds):
                details[key] = int(details[key])
    details["sessions_verified"] = min(int(d.get("sessions_verified", 0)) for _, d in rounds)  # per round
    details["min_session_rotations"] = min(int(d.get("min_session_rotations", 0)) for _, d in rounds)
    for key in ("error_samples", "extra_samples"):
        details[key] = [text for _, d in rounds for text in d.get(key, [])][:20]
    return merged, details


def write_json(
    path: str,
    results: Sequence[Mapping[str, Any]],
    ratio: Mapping[str, Any] | None,
    rounds: Sequence[Mapping[str, Any]] | None = None,
) -> None:
    """One result as itself; two (``--vs``) as ``{"results": [...], "ratios": {...}}``; with
    several rounds, ``"rounds"`` lists each round's ratios (and ``median_ratios`` their medians)."""
    if len(results) == 1 and ratio is None:
        doc: Any = dict(results[0])
    else:
        doc = {"results": [dict(r) for r in results], "ratios": dict(ratio or {})}
        if rounds:
            doc["rounds"] = [dict(r) for r in rounds]
            doc["median_ratios"] = median_ratios(rounds)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


def median_ratios(rounds: Sequence[Mapping[str, float | None]]) -> dict[str, float | None]:
    """Each ratio's median over the rounds (None if any round had none): robust to one round
    that shared the machine with something else."""
    out: dict[str, float | None] = {}
    for key in rounds[0]:
        values = [r.get(key) for r in rounds]
        known = [float(v) for v in values if v is not None]
        out[key] = round(_median(known), 3) if len(known) == len(values) else None
    return out


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
        ("MB sent / received", _megabytes(result)),
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
    rounds: Sequence[Mapping[str, float | None]] | None = None,
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
        medians = median_ratios(rounds) if rounds and len(rounds) > 1 else None
        if medians is not None:
            rt.add_column("median of rounds", justify="right")
            rt.add_column("each round", justify="right")
        for key, value in ratio.items():
            cells = ["n/a" if value is None else f"{value:.2f}x"]
            if medians is not None and rounds is not None:
                median = medians[key]
                cells.append("n/a" if median is None else f"{median:.2f}x")
                cells.append(" ".join("n/a" if r.get(key) is None else f"{r[key]:.2f}" for r in rounds))
            rt.add_row(key, *cells)
        console.print(rt)
    for result, detail in zip(results, details, strict=True):
        for key, what in (("error_samples", "problems"), ("extra_samples", "extra turns")):
            samples = detail.get(key) or []
            if samples:
                console.print(f"[red]{result['client']}: {what} (first {len(samples)}):[/red]")
                for text in samples:
                    console.print(f"  {text}", markup=False, soft_wrap=True)
