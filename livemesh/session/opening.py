"""``open_session``: a session for the duration of an ``async with`` block, in a nursery that
belongs to the block (the pool's variant runs :meth:`Session.run` in its own nursery)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import trio

from livemesh._groups import unwrap_group
from livemesh.errors import LivemeshError
from livemesh.session.actor import HandleHook, Session
from livemesh.session.config import SessionConfig

__all__ = ["open_session"]



@asynccontextmanager
async def open_session(
    config: SessionConfig | Mapping[str, Any] | None = None,
    /,
    *,
    on_handle: HandleHook | None = None,
    rng: random.Random | None = None,
    **options: Any,
) -> AsyncIterator[Session]:
    """Open a Live session for the duration of the block::

        async with livemesh.open_session(model="gemini-3.8-live",
                                         output_audio_transcription={}) as s:
            await s.send_client_content("Hello")
            turn = await s.receive_turn()  # turn.audio, and its text in turn.output_transcript

    ``config`` is a :class:`SessionConfig` or a dict of its options (seed or google-genai
    spellings); keyword ``options`` are merged in. The block's tasks run in a nursery that belongs
    to it; leaving the block flushes queued input, sends a close frame and ends every task. If the
    session fails, the block is cancelled and the :class:`SessionError` is raised from it.
    """
    session = Session(SessionConfig.build(config, **options), on_handle=on_handle, rng=rng)
    body_error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(_run_quietly, session)
            with trio.CancelScope() as body_scope:
                session._body_scope = body_scope
                try:
                    yield session
                except BaseException as exc:
                    body_error = exc
                    raise
            with trio.CancelScope(shield=True):
                await session.aclose()
    except BaseExceptionGroup as group:
        raise unwrap_group(group, body_error) from None
    if session.error is not None and not session._error_seen:
        raise session.error


async def _run_quietly(
    session: Session, *, task_status: trio.TaskStatus[Session] = trio.TASK_STATUS_IGNORED
) -> None:
    """``session.run`` for :func:`open_session`: a failure after start cancels the block instead of
    raising inside the nursery (the block then raises it, unwrapped)."""
    try:
        await session.run(task_status=task_status)
    except LivemeshError:
        if not session._core.started:
            raise
        if session._body_scope is not None:
            session._body_scope.cancel()
