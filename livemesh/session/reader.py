"""The reader task: from the connection, through the core, to the callbacks and the inbox.

Each frame is decoded (a malformed one fails the session, never the pool), handed to the core
with when it arrived and its arrival number (``SessionCore.frame``), which decides what follows
(tools to start or cancel, a move, a handle for the handle hook); then the callbacks run, in
arrival order, and the message goes to the inbox for ``async for``.
"""

from __future__ import annotations

import trio

from livemesh import wire
from livemesh.errors import DecodeError, RemoteProtocolError
from livemesh.session.callbacks import call_callback
from livemesh.session.core.core import HANDLE, TOOLS
from livemesh.session.links import Links
from livemesh.transport import Connection

__all__ = ["HandleHook", "decode", "deliver_nowait", "read", "safe_callback"]

from collections.abc import Awaitable, Callable
from typing import Any

HandleHook = Callable[[str], Awaitable[None] | None]
"""Called with every new resumable handle (a handle store's ``save``)."""


def decode(links: Links, raw: bytes | str) -> wire.ServerMessage:
    try:
        return wire.decode_server(raw, max_size=links.config.transport.max_message_bytes)
    except DecodeError as exc:
        links.core.counters.decode_errors += 1
        raise RemoteProtocolError(f"malformed server frame: {exc.reason}") from None


async def read(conn: Connection, links: Links, on_handle: HandleHook | None) -> None:
    """Read until the connection ends (raises its error) or the task is cancelled."""
    core = links.core
    if links.stash is not None:
        stashed = links.stash
        try:
            await links.inbox_in.send(stashed)
            links.unread += 1
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass
        links.stash = None
    fence_result = conn.fence_result  # the pongs of the writer's fences
    inbox_in = links.inbox_in
    callbacks = links.config.callbacks
    # No callback (the usual case): a message costs no coroutine for them; a new handle does
    # when there is a handle hook (a pool's handle store), and a goAway (``_callbacks`` logs it).
    no_callbacks = all(getattr(callbacks, name) is None for name in _READ_CALLBACKS)
    hook_flags = HANDLE if on_handle is not None else 0
    while True:
        raw = await conn.receive()
        now = trio.current_time()
        # When the frame arrived, not when it was read: the reader may have spent seconds handing
        # earlier messages to a slow consumer (the core dates handles with it).
        arrived = conn.arrived_after
        message = decode(links, raw)
        flags = core.frame(
            message,
            now,
            now if arrived is None else min(arrived, now),
            conn.received_index,
            len(raw),
            fence_result,
        )
        if flags:
            links.apply(flags)
            if flags & TOOLS:
                await links.dispatch_tools()
        if not no_callbacks or flags & hook_flags or message.go_away is not None:
            await _callbacks(links, message, flags, on_handle)
        if message.setup_complete is None:
            try:
                # With room in the inbox no scheduling round (the receiver is woken all the
                # same): one task step less per message. The reader still yields: receive()
                # waits at the socket.
                inbox_in.send_nowait(message)
                links.unread += 1
            except trio.WouldBlock:
                await _deliver(links, message)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                pass


_READ_CALLBACKS = (
    "on_session_resumption",
    "on_transcription",
    "on_tool_call_cancellation",
    "on_go_away",
    "on_voice_activity",
    "on_message",
)
"""The callbacks :func:`_callbacks` may call."""


async def _callbacks(
    links: Links, message: wire.ServerMessage, flags: int, on_handle: HandleHook | None
) -> None:
    """The message's callbacks, in the order the bookkeeping ran."""
    callbacks = links.config.callbacks
    update = message.session_resumption_update
    if update is not None:
        if flags & HANDLE and on_handle is not None and update.new_handle:
            try:
                await call_callback(on_handle, update.new_handle, log=links.log)
            except Exception as exc:
                links.core.counters.callback_errors += 1
                links.log.warning("handle hook raised %s", type(exc).__name__)
        await safe_callback(links, callbacks.on_session_resumption, update)
    content = message.server_content
    if content is not None:
        if content.input_transcription is not None:
            await safe_callback(links, callbacks.on_transcription, "input", content.input_transcription)
        if content.output_transcription is not None:
            await safe_callback(links, callbacks.on_transcription, "output", content.output_transcription)
    if message.tool_call_cancellation is not None:
        ids = list(message.tool_call_cancellation.ids or [])
        await safe_callback(links, callbacks.on_tool_call_cancellation, ids)
    if message.go_away is not None:
        time_left = message.go_away.time_left
        notice = float(time_left) if time_left is not None else links.config.limits.go_away_notice_s
        links.log.info("goAway: %.3f s left", notice)
        await safe_callback(links, callbacks.on_go_away, message.go_away)
    if message.voice_activity is not None:
        await safe_callback(links, callbacks.on_voice_activity, message.voice_activity)
    await safe_callback(links, callbacks.on_message, message)


async def _deliver(links: Links, message: wire.ServerMessage) -> None:
    """Wait for room in the inbox (the reader tried ``send_nowait`` first; only the first
    connection's ``setupComplete`` reaches the user, so the reader delivers none)."""
    try:
        await links.inbox_in.send(message)
        links.unread += 1
    except trio.Cancelled:
        links.stash = message  # moving on: the next connection's reader delivers it first
        raise
    except (trio.ClosedResourceError, trio.BrokenResourceError):
        pass


def deliver_nowait(links: Links, message: wire.ServerMessage) -> None:
    """Deliver without waiting (the first ``setupComplete``); stashed if the inbox is full."""
    try:
        links.inbox_in.send_nowait(message)
        links.unread += 1
    except trio.WouldBlock:
        links.stash = message


async def safe_callback(links: Links, fn: Any, *args: Any) -> None:
    """Call a user callback; an exception is logged, counted and passed to ``on_error``."""
    if fn is None:
        return
    try:
        await call_callback(fn, *args, log=links.log)
    except Exception as exc:
        links.core.counters.callback_errors += 1
        links.log.warning(
            "callback %s raised %s", getattr(fn, "__name__", fn), type(exc).__name__, exc_info=True
        )
        on_error = links.config.callbacks.on_error
        if fn is not on_error:
            try:
                await call_callback(on_error, exc, log=links.log)
            except Exception:
                links.core.counters.callback_errors += 1
