"""The session's inbox (livemesh.session.inbox): bounded FIFO, backpressure, close, cancellation."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from livemesh.session.inbox import Inbox


async def test_fifo_bounded_and_a_sender_waits_for_room() -> None:
    inbox = Inbox[int](2)
    inbox.send_nowait(1)
    inbox.send_nowait(2)
    with pytest.raises(trio.WouldBlock):
        inbox.send_nowait(3)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(inbox.send, 3)
            await trio.testing.wait_all_tasks_blocked()
            assert len(inbox) == 2  # the sender waits
            assert await inbox.receive() == 1
        assert [await inbox.receive() for _ in range(2)] == [2, 3]
    assert len(inbox) == 0


async def test_close_wakes_a_waiting_receiver_after_the_rest_is_drained() -> None:
    inbox = Inbox[str](4)
    got: list[str] = []

    async def drain() -> None:
        while True:
            try:
                got.append(await inbox.receive())
            except trio.EndOfChannel:
                got.append("end")
                return

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain)
            await trio.testing.wait_all_tasks_blocked()
            inbox.send_nowait("a")
            inbox.send_nowait("b")
            inbox.close()
    assert got == ["a", "b", "end"]
    with pytest.raises(trio.ClosedResourceError):
        await inbox.send("c")
    with pytest.raises(trio.ClosedResourceError):
        inbox.send_nowait("c")


async def test_close_wakes_a_sender_waiting_for_room() -> None:
    inbox = Inbox[int](1)
    inbox.send_nowait(0)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:

            async def blocked() -> None:
                with pytest.raises(trio.ClosedResourceError):
                    await inbox.send(1)

            nursery.start_soon(blocked)
            await trio.testing.wait_all_tasks_blocked()
            inbox.close()


async def test_a_send_cancelled_while_waiting_queues_nothing() -> None:
    inbox = Inbox[int](1)
    inbox.send_nowait(0)
    with trio.fail_after(5):
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(inbox.send, 1)
                await trio.testing.wait_all_tasks_blocked()
                scope.cancel()
    assert scope.cancelled_caught
    assert await inbox.receive() == 0
    assert len(inbox) == 0


async def test_a_receiver_that_always_finds_a_message_still_lets_others_run() -> None:
    inbox = Inbox[int](100)
    for i in range(100):
        inbox.send_nowait(i)
    taken: list[int] = []
    seen: list[int] = []

    async def watch() -> None:
        while len(taken) < 100:
            seen.append(len(taken))
            await trio.lowlevel.checkpoint()

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            for _ in range(100):
                taken.append(await inbox.receive())
    assert taken == list(range(100))
    assert any(0 < n < 100 for n in seen)
