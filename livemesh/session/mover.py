"""The mover task: sleeps until the core has something to decide about leaving the connection.

A move (goAway, the connection's age, ``rotate()``) or a close is decided by the core
(``SessionCore.tick``): when to hold input, when a handle fits, when the deadline forces a leave,
when a close has flushed what was queued. This task only wakes it: at the core's next deadline,
or when an event may have changed its mind (``Links.mover_wake``), and ends the connection when
the core says so, at a frame boundary (never while the writer is mid-write).

It also runs the connection's keepalive (``Connection.keepalive`` at its deadline), so the
reader's waits on the socket carry no deadline of their own.
"""

from __future__ import annotations

import trio

from livemesh.session.core import MovePhase, Step
from livemesh.session.links import Links
from livemesh.transport import Connection

__all__ = ["move"]


async def move(links: Links, conn: Connection) -> str:
    """Run until this connection should end; returns ``"move"`` or ``"close"``; raises the
    keepalive's error if it finds the connection dead."""
    core = links.core
    was = core.move.phase
    while True:
        step = core.tick(trio.current_time(), links.outbox_out.statistics().current_buffer_used)
        phase = core.move.phase
        if phase is not was:
            _log_phase(links, was, phase)
            was = phase
            links.notify()
            links.wake_writer()  # a hold taken or released, a ping wanted
        if step is Step.LEAVE:
            core.leaving()
            links.log.info(
                "moving to a new connection (%s) after %.3f s",
                core.move.reason or "requested",
                trio.current_time() - core.move.started_at,
            )
            return "move"
        if step is Step.CLOSE:
            return "close"
        wake = links.mover_wake
        with trio.move_on_at(min(core.next_wake(trio.current_time()), conn.keepalive_deadline())):
            await wake.wait()
        if wake is links.mover_wake:
            links.mover_wake = trio.Event()
        if trio.current_time() >= conn.keepalive_deadline():
            await conn.keepalive()


def _log_phase(links: Links, was: MovePhase, phase: MovePhase) -> None:
    core, log = links.core, links.log
    if phase is MovePhase.SEEKING and core.move.reason == "timer":
        log.info("connection age limit: rotating")
    elif phase is MovePhase.HOLDING_EARLY:
        log.debug("holding input for the move while the model answers")
    elif phase is MovePhase.RELEASED:
        log.debug("no handle can come while input is held: let through (the user is speaking?)")
    elif phase is MovePhase.LEAVING:
        if core.move.forced:
            log.debug("the connection's end is near: moving with the newest handle as it is")
        log.debug(
            "hold at %.4f, newest handle received at %.4f (arrived %.4f, frame %d), %d logged "
            "(%d ambiguous), forced: %s",
            core.move.hold_at,
            core.handle_received_at,
            core.handle_arrived_at,
            core.handle_index,
            len(core.replay),
            core.replay.ambiguous(core.handle_seq),
            core.move.forced,
        )
