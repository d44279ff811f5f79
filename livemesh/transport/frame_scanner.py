"""Where each server frame ends in the byte stream a WebSocket client reads: :class:`FrameScanner`.

The trio-websocket engine needs, for every message it hands out, when it arrived, and for every
pong, how many messages came before it. trio-websocket parses frames in its own reader task and
exposes neither (its queue of messages read ahead is private), so the engine watches the bytes
that task reads (:class:`~livemesh.transport.streams.SocketIOStream` tells it) and finds the
frame boundaries itself. Only headers are read (2-14 bytes a frame; a pong's payload, at most 125
bytes, for its token): payloads are skipped, never copied or unmasked, and frames are still parsed
and checked by trio-websocket (wsproto). Server frames are unmasked (RFC 6455 5.1); a masked one
is skipped over all the same (wsproto fails the connection for it).
"""

from __future__ import annotations

import collections
from typing import Final

from livemesh.transport.fences import Fences
from livemesh.transport.liveness import Keepalive

__all__ = ["FrameScanner"]

_CONTINUATION: Final = 0x0
_TEXT: Final = 0x1
_BINARY: Final = 0x2
_PONG: Final = 0xA
_MAX_HEAD: Final = 64 * 1024
"""Bytes of the upgrade's answer scanned for its end before giving up (the engine fails anyway)."""


class FrameScanner:
    """Frame boundaries in the bytes read from a server, after the upgrade's answer.

    Each complete data message's arrival stamp is queued (:meth:`next_stamp` hands them out in
    order, as the messages are); each pong answers its fence with the number of messages before
    it; any complete frame is life for the keepalive.

    Args:
        fences: The connection's fences (a pong's payload is a fence's token).
        keepalive: The connection's keepalive (told of every complete frame).
        opened_at: A time no later than the connection's first byte (the stamp of last resort).
    """

    __slots__ = (
        "_buffer",
        "_fences",
        "_frame",
        "_head",
        "_keepalive",
        "_opened_at",
        "_skip",
        "_stamps",
        "messages",
        "pongs",
    )

    def __init__(self, fences: Fences, keepalive: Keepalive, opened_at: float) -> None:
        self._fences = fences
        self._keepalive = keepalive
        self._opened_at = opened_at
        self._head: bytes | None = b""  # the upgrade's answer so far (None once it ended)
        self._buffer = b""  # an incomplete header, or a pong's incomplete payload
        self._skip = 0  # payload bytes of the current frame still to come
        self._frame = 0  # the current frame's first byte (FIN and opcode)
        self._stamps: collections.deque[float] = collections.deque()
        self.messages = 0
        """Data messages complete so far."""
        self.pongs = 0
        """Pongs complete so far."""

    def __repr__(self) -> str:
        return f"<FrameScanner messages={self.messages} unread={len(self._stamps)}>"

    def next_stamp(self) -> float:
        """The arrival stamp of the oldest message not handed out yet.

        Returns:
            A time no later than that message's arrival (the connection's opening time if the
            scanner saw no such message, which would be a bug: earlier is the safe side).
        """
        return self._stamps.popleft() if self._stamps else self._opened_at

    def feed(self, data: bytes, stamp: float) -> None:
        """The bytes of one read, whose arrival is no earlier than ``stamp``.

        Args:
            data: What the read returned.
            stamp: A time no later than the arrival of these bytes.
        """
        if self._head is not None:
            head = self._head + data
            end = head.find(b"\r\n\r\n")
            if end < 0:
                self._head = head if len(head) <= _MAX_HEAD else None
                return
            self._head = None
            data = head[end + 4 :]
        position = 0
        size = len(data)
        complete = False
        if self._skip:
            if size < self._skip:
                self._skip -= size
                return
            position = self._skip
            self._skip = 0
            self._complete(self._frame, stamp)
            complete = True
        if self._buffer:
            data = self._buffer + data[position:]
            self._buffer = b""
            position = 0
            size = len(data)
        while size - position >= 2:
            first, second = data[position], data[position + 1]
            length = second & 0x7F
            start = position + 2
            if length == 126:
                start += 2
                if size < start:
                    break
                length = int.from_bytes(data[position + 2 : start], "big")
            elif length == 127:
                start += 8
                if size < start:
                    break
                length = int.from_bytes(data[position + 2 : start], "big")
            if second & 0x80:
                start += 4  # a mask key (never from a conforming server)
            if size < start:
                break
            end = start + length
            if first & 0x0F == _PONG and length <= 125:  # (a longer one is malformed: skipped)
                if size < end:
                    break  # its token is not all here yet
                self.pongs += 1
                self._fences.answered(bytes(data[start:end]), self.messages)
            elif end > size:
                self._skip = end - size
                self._frame = first
                position = size
                break
            else:
                self._complete(first, stamp)
            complete = True
            position = end
        if position < size:
            self._buffer = bytes(data[position:])
        if complete:
            self._keepalive.heard()  # a whole frame is life; bytes alone are not

    def _complete(self, first: int, stamp: float) -> None:
        """A frame that is not a pong ended: a message ends with a final data frame."""
        if first & 0x80 and first & 0x0F in (_CONTINUATION, _TEXT, _BINARY):
            self.messages += 1
            self._stamps.append(stamp)
