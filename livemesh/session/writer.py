"""The writer task: from the outbox, through the core, to the connection (one writer = ordering).

It takes what senders put in the outbox and hands it to the core (``take``), which decides what
goes out and when (a move or a BLOCKING call holds input; replays and tool answers go first).
What can go out goes in one write: a batch of messages (``send_many``: one syscall, one
scheduling round for the lot) and, where the core wants one, a ping after them
(``send_fenced``) whose pong the reader collects; nothing waits for it.
"""

from __future__ import annotations

import trio

from livemesh.session.core import Outgoing
from livemesh.session.links import Links
from livemesh.transport import Connection

__all__ = ["WRITE_BATCH", "write"]

WRITE_BATCH = 32
"""At most this many messages go out in one write."""


def _take(links: Links, out: Outgoing | None) -> None:
    links.unsent -= 1
    if out is not None:
        links.core.take(out)


async def write(conn: Connection, links: Links) -> None:
    """Write until cancelled (the connection's end); raises the connection's errors."""
    core, outbox = links.core, links.outbox_out
    open_ = True  # the outbox: senders (the user, the tool runner) may still put messages in it
    while True:
        # Take what is waiting, as far as the core has room (it holds input during a move).
        while open_ and links.unsent > 0 and core.room(WRITE_BATCH):
            try:
                _take(links, outbox.receive_nowait())
            except trio.WouldBlock:
                break
            except trio.EndOfChannel:
                open_ = False
        write = core.next_write(trio.current_time(), WRITE_BATCH)
        if write is None:
            if open_ and core.room(WRITE_BATCH):
                # Nothing to send: wait for a message (or a wake-up, ``None``: the core let
                # something through).
                links.writer_waiting = True
                try:
                    _take(links, await outbox.receive())
                except trio.EndOfChannel:
                    open_ = False
                finally:
                    links.writer_waiting = False
            else:
                # The core holds input it will let out later (or the outbox is closed): wait
                # until it says something may go.
                wake = links.writer_wake = trio.Event()
                await wake.wait()
            continue
        token: bytes | None = None
        batch = write.batch
        try:
            if write.fence:
                token = await conn.send_fenced([item.data for item in batch])
            elif len(batch) == 1:
                await conn.send(batch[0].data)
            else:
                await conn.send_many([item.data for item in batch])
        finally:
            links.apply(core.wrote(write, token, trio.current_time()))
