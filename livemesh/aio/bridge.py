"""Any trio code from asyncio: :func:`run_trio` (one call) and :func:`trio_block` (a block),
and the emulator for asyncio tests and demos (:func:`open_emulator`).

These run in the loop's shared guest run, like the sessions and pools of ``livemesh.aio``, so
trio objects made by one (an emulator, a trio session) can be used by another.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from livemesh.aio.block import TrioBlock
from livemesh.aio.guest import guest_run

if TYPE_CHECKING:
    from livemesh.emulator import Emulator, EmulatorConfig

__all__ = ["open_emulator", "run_trio", "trio_block"]

T = TypeVar("T")


async def run_trio(fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
    """Run the trio async function ``fn(*args, **kwargs)`` in the loop's guest run; its result.

    For trio coroutines livemesh.aio does not wrap, e.g. ``await run_trio(emu.drop)``.
    Cancelling the calling task cancels ``fn`` (and waits for it to finish).

    Args:
        fn: A trio async function.
        *args: Its positional arguments.
        **kwargs: Its keyword arguments.

    Returns:
        What ``fn`` returned.

    Raises:
        Exception: What ``fn`` raised (the same object).
    """
    async with guest_run() as run:
        return await run.call(fn, *args, **kwargs)


def trio_block(cm: AbstractAsyncContextManager[T]) -> AbstractAsyncContextManager[T]:
    """Hold the trio async context manager ``cm`` open for an asyncio ``async with`` block.

    ``cm`` is entered and exited by a trio task in the loop's guest run; the asyncio block gets
    what it yields. The asyncio body's exception is raised inside the trio block (as a trio
    body's would be); if the trio block ends by itself with an error while the asyncio body
    runs, the body is cancelled and that error raised from the block.

    Args:
        cm: A trio async context manager, not yet entered (e.g. ``open_emulator(config)``).

    Returns:
        An asyncio async context manager.
    """
    return TrioBlock(cm)


def open_emulator(config: EmulatorConfig | None = None) -> AbstractAsyncContextManager[Emulator]:
    """Serve the local Live API emulator in the loop's guest run for an asyncio block.

    The block gets the emulator's trio handle: its plain members (``url``, ``http_url``,
    ``stats()``, ``session_ids()``) work from asyncio code as they are; await its coroutines
    with :func:`run_trio` (``await run_trio(emu.send_go_away, time_left=1.0)``). It shares the
    loop's thread with the clients: fine for tests and demos, not for load measurements.

    Args:
        config: The emulator's settings (default ``EmulatorConfig()``).

    Returns:
        An async context manager yielding the :class:`livemesh.emulator.Emulator`.
    """
    from livemesh.emulator import EmulatorConfig
    from livemesh.emulator import open_emulator as trio_open_emulator

    return TrioBlock(trio_open_emulator(config if config is not None else EmulatorConfig()))
