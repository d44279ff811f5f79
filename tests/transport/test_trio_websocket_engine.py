"""The trio-websocket engine's own parts: the frame scanner that dates its messages and counts its
fences (checked against the frames it was fed, cut at every possible place), and the corked
stream its batches go through."""

from __future__ import annotations

import itertools
import math

import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from livemesh.transport.fences import Fences
from livemesh.transport.frame_scanner import FrameScanner
from livemesh.transport.liveness import Keepalive
from livemesh.transport.sockets import SocketIO
from livemesh.transport.streams import SocketIOStream
from tests.transport.helpers import server_frame, socket_pair

HEAD = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"

# (opcode, payload size, fin); continuation frames follow a non-final data frame
_SIZES = st.sampled_from([0, 1, 125, 126, 127, 65535, 65536, 70_000])


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[bytes], list[tuple[str, int]]]:
    """Server frames, and what a reader must find: ("message", n) when the n-th message ends,
    ("pong", messages before it) for each pong (its payload names it)."""
    frames: list[bytes] = []
    expected: list[tuple[str, int]] = []
    messages = 0
    pongs = 0
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["message", "fragmented", "ping", "pong", "close-less-control"]))
        if kind == "message":
            frames.append(server_frame(draw(st.sampled_from([1, 2])), b"m" * draw(_SIZES)))
            messages += 1
            expected.append(("message", messages))
        elif kind == "fragmented":
            frames.append(server_frame(1, b"a" * draw(_SIZES), fin=False))
            frames.append(server_frame(0x9, b"interleaved"))  # a control frame between fragments
            frames.append(server_frame(0, b"b" * draw(_SIZES), fin=True))
            messages += 1
            expected.append(("message", messages))
        elif kind == "ping":
            frames.append(server_frame(0x9, b"p" * draw(st.integers(0, 125))))
        elif kind == "pong":
            pongs += 1
            token = b"livemesh-fence-%d" % pongs  # what Fences.open makes, in order
            frames.append(server_frame(0xA, token))
            expected.append(("pong", messages))
        else:
            frames.append(server_frame(0xA, b"not a fence"))
    return frames, expected


@given(streams(), st.lists(st.integers(1, 200_000), max_size=12))
def test_the_scanner_finds_every_boundary_however_the_bytes_are_cut(
    case: tuple[list[bytes], list[tuple[str, int]]], cuts: list[int]
) -> None:
    trio.run(_scan_and_check, case, cuts)  # (the keepalive reads trio's clock)


async def _scan_and_check(case: tuple[list[bytes], list[tuple[str, int]]], cuts: list[int]) -> None:
    frames, expected = case
    data = HEAD + b"".join(frames)
    fences = Fences()
    tokens = [fences.open() for _ in range(sum(1 for kind, _ in expected if kind == "pong"))]
    keepalive = Keepalive()
    scanner = FrameScanner(fences, keepalive, opened_at=-1.0)
    bounds = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    for stamp, (start, end) in enumerate(itertools.pairwise(bounds)):
        scanner.feed(data[start:end], float(stamp))
    assert scanner.messages == sum(1 for kind, _ in expected if kind == "message")
    pong_counts = [count for kind, count in expected if kind == "pong"]
    assert [fences.result(token) for token in tokens] == pong_counts
    stamps = [scanner.next_stamp() for _ in range(scanner.messages)]
    assert stamps == sorted(stamps) and all(s >= 0 for s in stamps)
    assert scanner.next_stamp() == -1.0  # none left: the opening time, the safe side


async def test_a_message_is_dated_by_the_read_that_completed_it() -> None:
    scanner = FrameScanner(Fences(), Keepalive(), opened_at=0.0)
    frame = server_frame(2, b"x" * 1000)
    scanner.feed(HEAD + frame[:10], 1.0)
    scanner.feed(frame[10:500], 2.0)
    scanner.feed(frame[500:] + server_frame(1, b"y"), 3.0)
    assert (scanner.messages, scanner.next_stamp(), scanner.next_stamp()) == (2, 3.0, 3.0)


def test_only_complete_frames_are_life(autojump_clock: trio.testing.MockClock) -> None:
    async def main() -> None:
        keepalive = Keepalive()
        keepalive.configure(10, 5)
        scanner = FrameScanner(Fences(), keepalive, opened_at=0.0)
        await trio.sleep(20)
        scanner.feed(HEAD + server_frame(2, b"x" * 1000)[:900], 1.0)  # a frame's head: not life
        assert keepalive.deadline() == 10
        scanner.feed(b"x" * 100 + server_frame(0xA, b"tok"), 2.0)  # the rest, and a pong
        assert keepalive.deadline() == 30

    trio.run(main, clock=autojump_clock)


async def test_a_corked_stream_sends_its_writes_as_one() -> None:
    a, b = socket_pair()
    stream = SocketIOStream(SocketIO(a))
    peer = trio.SocketStream(trio.socket.from_stdlib_socket(b))
    stream.cork()
    await stream.send_all(b"one ")
    written: list[str] = []
    stream.on_write(lambda: written.append("handed over"))
    await stream.send_all(b"two ")
    assert written == ["handed over"]
    with trio.move_on_after(0.01):  # nothing on the wire yet (real time: proves an absence)
        assert await peer.receive_some(100) == b""
    await stream.uncork()
    assert await peer.receive_some(100) == b"one two "
    await stream.send_all(b"three")
    assert await peer.receive_some(100) == b"three"
    await stream.aclose()
    await peer.aclose()


def test_keepalive_and_fences_rules() -> None:
    async def main() -> None:
        keepalive = Keepalive()
        assert keepalive.deadline() == math.inf
        keepalive.configure(20, 60)
        assert not keepalive.due()  # not yet
        fences = Fences()
        tokens = [fences.open() for _ in range(70)]
        assert fences.result(tokens[0]) is None  # forgotten beyond 64
        assert not fences.answered(tokens[0], 1)
        assert fences.answered(tokens[-1], 7) and fences.result(tokens[-1]) == 7
        assert fences.result(tokens[-1]) is None

    trio.run(main)
