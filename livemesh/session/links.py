"""What a session's tasks share: the core, the memory channels between them, and their wake-ups.

::

    user --send_*()--> [outbox] --> writer --> connection
    user <--async for-- [inbox] <-- reader <-- connection
                        reader --> [tool work] --> tool runner --> the core (the answers, ahead of input)
    every event --> SessionCore --> decisions (Links.apply)

The channels are trio memory channels, bounded: ``outbox_size`` messages wait for the writer (a
full outbox blocks senders, first come first served), ``inbox_size`` for the user (a full inbox
makes the reader wait), ``max_running_tools`` calls for the tool runner. The writer hands what
it takes from the outbox to the core, which holds input during a move or a BLOCKING call and
decides what goes out when. ``None`` in the outbox wakes a waiting writer (something the core
holds became sendable); it goes through ``wakeup``, a clone of the outbox's send side that stays
open while the session runs, because the user's side closes at ``aclose`` and the writer may then
still have held input to flush.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeAlias

import attrs
import trio

from livemesh import wire
from livemesh.session.config import SessionConfig
from livemesh.session.core import Outgoing, SessionCore
from livemesh.session.core.core import CANCELS, CHANGED, LATENCY, MOVER, WRITER
from livemesh.session.core.ledger import PendingCall

__all__ = ["Links", "ToolWork"]

ToolWork: TypeAlias = PendingCall | list[wire.FunctionCall]
"""A call for a session-run tool, or calls for the ``on_tool_call`` callback."""


@attrs.define(eq=False, slots=True)
class Links:
    """The session's shared state (see the module docstring); one per session."""

    core: SessionCore
    config: SessionConfig
    log: logging.LoggerAdapter[Any]
    outbox: trio.MemorySendChannel[Outgoing | None]
    outbox_out: trio.MemoryReceiveChannel[Outgoing | None]
    inbox_in: trio.MemorySendChannel[wire.ServerMessage]
    inbox: trio.MemoryReceiveChannel[wire.ServerMessage]
    on_turn_latency: Callable[[float], None] | None = None
    wakeup: trio.MemorySendChannel[Outgoing | None] = attrs.field(
        default=attrs.Factory(lambda self: self.outbox.clone(), takes_self=True)
    )
    """Where :meth:`wake_writer` puts its ``None`` (open until the session ends)."""
    tool_work: trio.MemorySendChannel[ToolWork] | None = None
    scopes: dict[str, trio.CancelScope] = attrs.Factory(dict)
    """The running tool calls' cancel scopes, by call id."""
    changed: trio.Event | None = None
    """Set (and dropped) when quiet, idle, moves or the state may have changed; made by the first
    waiter (:meth:`wait_changed`), so a change nobody waits for costs nothing."""
    mover_wake: trio.Event = attrs.Factory(trio.Event)
    writer_waiting: bool = False
    """The writer waits for the outbox (a ``None`` sent there wakes it)."""
    writer_wake: trio.Event | None = None
    """The writer waits with the core full of held input (this wakes it)."""
    unsent: int = 0
    """Items put in the outbox (messages and wake-ups) the writer has not taken yet (a hint, as
    :attr:`unread`: the writer looks with ``receive_nowait`` only when there are)."""
    unread: int = 0
    """Messages put in the inbox and not yet received (a hint: the receiver tries
    ``receive_nowait`` only when there are; wrong either way it only costs a scheduling round)."""
    stash: wire.ServerMessage | None = None
    """A message whose delivery a move interrupted: the next connection's reader delivers it first."""

    def notify(self) -> None:
        """Wake those waiting for a change of state (``wait_quiet``, ``rotate``, ``wait_moved``)."""
        changed = self.changed
        if changed is not None:
            self.changed = None
            changed.set()

    async def wait_changed(self) -> None:
        """Wait for the next :meth:`notify`."""
        changed = self.changed
        if changed is None:
            self.changed = changed = trio.Event()
        await changed.wait()

    def wake_mover(self) -> None:
        self.mover_wake.set()

    def wake_writer(self) -> None:
        """Something the core holds may be sendable now: a waiting writer looks again."""
        if self.writer_wake is not None:
            self.writer_wake.set()
            self.writer_wake = None
        if self.writer_waiting:
            self.writer_waiting = False
            try:
                self.wakeup.send_nowait(None)
                self.unsent += 1
            except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
                pass  # full: the writer is not waiting for it; closed: the session is ending

    def apply(self, flags: int) -> None:
        """Do what the core decided (the flags an event returned), except starting tools (an
        await: the reader does it, :meth:`dispatch_tools`)."""
        if not flags:
            return
        if flags & CANCELS:
            self.cancel_tools()
        if flags & WRITER:
            self.wake_writer()
        if flags & MOVER:
            self.mover_wake.set()
        if flags & LATENCY:
            core = self.core
            latency, core.turn_latency = core.turn_latency, None
            if latency is not None and self.on_turn_latency is not None:
                try:
                    self.on_turn_latency(latency)
                except Exception as exc:
                    core.counters.callback_errors += 1
                    self.log.warning("on_turn_latency raised %s", type(exc).__name__)
        if flags & CHANGED:
            self.notify()

    def cancel_tools(self) -> None:
        core = self.core
        for call_id in core.tool_cancels:
            scope = self.scopes.get(call_id)
            if scope is not None:
                scope.cancel()
        core.tool_cancels.clear()

    async def dispatch_tools(self) -> None:
        """Hand the calls the core decided to run to the tool runner (through its channel)."""
        core = self.core
        for call_id in core.repeated_calls:
            self.log.warning("repeated tool call id %s ignored", call_id)
        core.repeated_calls.clear()
        work: list[ToolWork] = [*core.tool_starts, *core.callback_calls]
        core.tool_starts.clear()
        core.callback_calls.clear()
        channel = self.tool_work
        if channel is None:  # pragma: no cover - the core only starts tools the config has
            return
        for item in work:
            try:
                channel.send_nowait(item)
            except trio.WouldBlock:
                await channel.send(item)

    def push(self, out: Outgoing) -> None:
        """Queue ``out`` in the core directly (the writer sends it), waking the writer."""
        self.core.take(out)
        self.wake_writer()
