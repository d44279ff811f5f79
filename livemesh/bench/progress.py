"""Live progress of a running client (sessions active, turns, messages/s, rotations) with rich.

The runner process sends cumulative snapshots; :class:`ProgressView` turns consecutive ones into
rates and renders one line per client. It is a plain renderable updated synchronously from the
runner callback; ``rich.live.Live`` refreshes it at its own (small) rate, on a console that is
not a terminal it prints nothing until the summary.
"""

from __future__ import annotations

import time
from typing import Any

import attrs
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table

__all__ = ["ProgressView"]


@attrs.define
class _Line:
    client: str
    duration_s: float
    sessions: int
    last: dict[str, Any] = attrs.Factory(dict)
    messages_per_s: float = 0.0
    turns_per_s: float = 0.0
    _prev_t: float | None = None
    _prev_msgs: int = 0
    _prev_turns: int = 0

    def update(self, snap: dict[str, Any]) -> None:
        now = time.perf_counter()
        msgs = int(snap.get("messages_sent", 0)) + int(snap.get("messages_received", 0))
        turns = int(snap.get("turns", 0))
        if self._prev_t is not None and now > self._prev_t:
            dt = now - self._prev_t
            self.messages_per_s = (msgs - self._prev_msgs) / dt
            self.turns_per_s = (turns - self._prev_turns) / dt
        self._prev_t, self._prev_msgs, self._prev_turns = now, msgs, turns
        self.last = snap


@attrs.define
class ProgressView:
    """Rendered by ``rich.live.Live``; :meth:`callback` gives the runner's ``on_progress``."""

    lines: list[_Line] = attrs.Factory(list)

    def add(self, client: str, *, duration_s: float, sessions: int) -> _Line:
        line = _Line(client, duration_s, sessions)
        self.lines.append(line)
        return line

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table = Table(box=None, pad_edge=False)
        for name in (
            "client",
            "elapsed",
            "active",
            "done",
            "turns",
            "turns/s",
            "msgs/s",
            "rotations",
            "reconnects",
            "errors",
        ):
            table.add_column(name, justify="right" if name != "client" else "left")
        for line in self.lines:
            s = line.last
            table.add_row(
                line.client,
                f"{s.get('elapsed_s', 0.0):5.1f}/{line.duration_s:g} s",
                f"{s.get('sessions_active', 0)}/{line.sessions}",
                f"{s.get('sessions_done', 0)}",
                f"{s.get('turns', 0):,}",
                f"{line.turns_per_s:,.0f}",
                f"{line.messages_per_s:,.0f}",
                f"{s.get('rotations', 0)}",
                f"{s.get('reconnects', 0)}",
                f"[red]{s['errors']}[/red]" if s.get("errors") else "0",
            )
        yield table
