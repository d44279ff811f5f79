"""Small helpers for the Redis tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio


async def eventually(
    check: Callable[[], Awaitable[bool]],
    *,
    timeout: float = 5.0,  # noqa: ASYNC109
    every: float = 0.02,
) -> None:
    """Wait until ``check()`` is true, re-asking Redis every ``every`` s (Redis has no event we can
    wait on for "this key expired"); TooSlowError after ``timeout``."""
    with trio.fail_after(timeout):
        while not await check():  # noqa: ASYNC110 (state lives in another process)
            await trio.sleep(every)
