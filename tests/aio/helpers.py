"""Helpers for the asyncio tests: each test is a plain function that calls :func:`run`, so
pytest-trio's trio mode (which runs ``async def`` tests under trio) leaves them alone."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from livemesh.aio import guest

T = TypeVar("T")

MODEL = "gemini-live-2.5-flash-preview"
AUDIO_MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"


def run(main: Callable[[], Awaitable[T]], *, timeout: float = 30.0) -> T:
    """``asyncio.run(main())`` bounded by ``timeout``; afterwards no guest run is left on any loop."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await main()

    result = asyncio.run(bounded())
    assert guest._RUNS == {}, guest._RUNS
    return result


def text_options(url: str, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "auth": "test-key", "base_url": url, "response_modalities": ["TEXT"], **extra}
