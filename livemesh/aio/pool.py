"""A livemesh pool for asyncio code: :func:`open_pool`, :class:`Pool`, :class:`Supervised`.

The pool is livemesh's trio pool in the loop's guest run (admission, rate limits, quota backoff,
supervision and the rotation planner all run there). Lent sessions (``pool.session``) are
asyncio :class:`~livemesh.aio.Session` objects; handlers given to ``pool.start`` are asyncio
coroutine functions, each incarnation one asyncio task that the pool supervises (cancelled when
its session fails or the pool closes, restarted per the restart policy).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable, Coroutine, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeAlias

import trio

from livemesh.aio.adapt import adapt_config, adapt_handle_store, check_sync
from livemesh.aio.block import TrioBlock
from livemesh.aio.guest import GuestRun
from livemesh.aio.onloop import is_coroutine_function, run_on_loop
from livemesh.aio.session import Session, start_session
from livemesh.errors import ConfigError
from livemesh.pool import Pool as TrioPool
from livemesh.pool import PoolSnapshot, RestartPolicy
from livemesh.pool import Supervised as TrioSupervised
from livemesh.pool import open_pool as trio_open_pool
from livemesh.session import Session as TrioSession
from livemesh.session import SessionConfig

__all__ = ["Handler", "Pool", "Supervised", "open_pool"]

Handler: TypeAlias = Callable[[Session], Coroutine[Any, Any, object]]
"""``async def handler(session)``: the asyncio body of a supervised session."""


class Supervised:
    """A handle on a conversation started with :meth:`Pool.start`."""

    __slots__ = ("_run", "_session", "_supervised")

    def __init__(self, run: GuestRun) -> None:
        self._run = run
        self._supervised: TrioSupervised | None = None
        self._session: Session | None = None

    def _trio(self) -> TrioSupervised:
        assert self._supervised is not None, "Pool.start returns the handle once admitted"
        return self._supervised

    @property
    def conversation_id(self) -> str:
        """The conversation's id (the handle store's key)."""
        return self._trio().conversation_id

    @property
    def state(self) -> str:
        """``connecting``, ``running``, ``restarting``, ``ended`` or ``failed``."""
        return self._trio().state

    @property
    def restarts(self) -> int:
        """Restarts so far."""
        return self._trio().restarts

    @property
    def session(self) -> Session | None:
        """The current incarnation's session (``None`` between incarnations)."""
        return self._session

    @property
    def error(self) -> BaseException | None:
        """The failure that ended the conversation for good (``None`` while running or after a clean end)."""
        return self._trio().error

    def cancel(self) -> None:
        """End this conversation (its handler is cancelled, its session closes); siblings are unaffected."""
        self._trio().cancel()  # a synchronous trio call from the host: allowed in guest mode

    async def wait(self) -> None:
        """Wait until the conversation ended for good."""
        await self._run.call(self._trio().wait)


class _Handler:
    """(trio) One incarnation of a supervised conversation: the user's asyncio handler, run as an
    asyncio task, with the session's asyncio face. The pool cancels this on failure or close,
    which cancels the asyncio task."""

    __slots__ = ("_context", "_handler", "_run", "_supervised")

    def __init__(self, handler: Handler, run: GuestRun, context: contextvars.Context, supervised: Supervised):
        self._handler = handler
        self._run = run
        self._context = context
        self._supervised = supervised

    async def __call__(self, session: TrioSession) -> None:
        async with trio.open_nursery() as nursery:
            face = await start_session(session, nursery, self._run)
            self._supervised._session = face
            try:
                await run_on_loop(self._run.loop, self._handler, (face,), {}, self._context)
            except trio.Cancelled:
                self._raise_unseen(face)  # the session's failure is what cancelled the handler
                raise
            else:
                self._raise_unseen(face)
            finally:
                self._supervised._session = None
                nursery.cancel_scope.cancel()

    @staticmethod
    def _raise_unseen(face: Session) -> None:
        """Raise the session's failure if the handler never received it. The pump met it, so the
        trio session counts it as seen; under trio the unseen error would leave the session's
        block and the pool would judge and report it: so must it here."""
        error = face._undelivered_error()
        if error is not None:
            raise error from None


class Pool:
    """Many Live sessions as supervised actors, for asyncio code (create with :func:`open_pool`).

    The methods are those of :class:`livemesh.Pool`; lent sessions and handlers are asyncio's.
    """

    __slots__ = ("_context", "_pool", "_run")

    def __init__(self, pool: TrioPool, run: GuestRun, context: contextvars.Context) -> None:
        self._pool = pool
        self._run = run
        self._context = context

    def __repr__(self) -> str:
        return f"<asyncio {self._pool!r}>"

    @property
    def trio_pool(self) -> TrioPool:
        """The trio pool behind this one."""
        return self._pool

    @property
    def closing(self) -> bool:
        """Whether :meth:`close` has begun."""
        return self._pool.closing

    def metrics(self, *, include_sessions: bool = True) -> PoolSnapshot:
        """A frozen pool-wide snapshot (cheap: O(live sessions) when ``include_sessions``).

        Args:
            include_sessions: Include one summary per live session.

        Returns:
            The snapshot.
        """
        return self._pool.metrics(include_sessions=include_sessions)

    def record_turn_latency(self, seconds: float) -> None:
        """Add one turn's latency (request sent -> first response) to the pool's histogram.

        Args:
            seconds: The latency.
        """
        self._pool.record_turn_latency(seconds)

    async def wait_closing(self) -> None:
        """Return when :meth:`close` has begun."""
        await self._run.call(self._pool.wait_closing)

    async def close(self, *, grace: float = 10.0) -> None:
        """Stop admitting, let sessions finish their turn within ``grace`` s, then close them all.

        Args:
            grace: Seconds to wait for each session's next quiet point.
        """
        await self._run.call(self._pool.close, grace=grace)

    def _config(
        self, config: SessionConfig | Mapping[str, Any] | None, options: dict[str, Any]
    ) -> SessionConfig:
        return adapt_config(SessionConfig.build(config, **options), self._run.loop, self._context)

    async def start(
        self,
        config: SessionConfig | Mapping[str, Any],
        handler: Handler,
        *,
        conversation_id: str | None = None,
        restart: RestartPolicy | None = None,
        admission_timeout: float | None = None,
        video: bool = False,
    ) -> Supervised:
        """Admit a conversation (queueing fairly) and supervise ``handler(session)`` in the pool.

        ``handler`` is an asyncio coroutine function; each incarnation runs as an asyncio task
        (in a copy of the context where the pool was opened) with a fresh :class:`Session`, and
        is cancelled if its session fails or the pool closes.

        Args:
            config: A ``SessionConfig`` or a dict of its options.
            handler: ``async def handler(session)``.
            conversation_id: The handle store's key (default: ``config.session_id`` or a fresh id).
            restart: A ``RestartPolicy`` overriding the pool's.
            admission_timeout: Seconds to wait for a slot (``None``: the pool's).
            video: Plan with the audio+video session budget.

        Returns:
            A :class:`Supervised` handle, once admitted.

        Raises:
            ConfigError: A bad config, or ``handler`` is not an async function.
            AdmissionTimeoutError: No slot in time.
            PoolClosedError: The pool is closing.
        """
        if not is_coroutine_function(handler):
            raise ConfigError(f"handler must be an async function taking the session, not {handler!r}")
        supervised = Supervised(self._run)
        trio_handler = _Handler(handler, self._run, self._context, supervised)
        supervised._supervised = await self._run.call(
            self._pool.start,
            self._config(config, {}),
            trio_handler,
            conversation_id=conversation_id,
            restart=restart,
            admission_timeout=admission_timeout,
            video=video,
        )
        return supervised

    def session(
        self,
        config: SessionConfig | Mapping[str, Any] | None = None,
        *,
        conversation_id: str | None = None,
        admission_timeout: float | None = None,
        video: bool = False,
        **options: Any,
    ) -> AbstractAsyncContextManager[Session]:
        """Lend a pooled session to an asyncio ``async with`` block; closed (its slot freed) on exit.

        Takes what ``open_session`` takes. Errors opening the session are raised at the block;
        later failures surface in the block's next use of the session (as with trio).

        Args:
            config: A ``SessionConfig`` or a dict of its options.
            conversation_id: The handle store's key.
            admission_timeout: Seconds to wait for a slot (``None``: the pool's).
            video: Plan with the audio+video session budget.
            **options: ``SessionConfig`` fields, merged into ``config``.

        Returns:
            An async context manager yielding the :class:`Session`.

        Raises:
            ConfigError: A bad option, at the call.
        """
        built = self._config(config, options)
        return TrioBlock(
            self._pool.session(
                built, conversation_id=conversation_id, admission_timeout=admission_timeout, video=video
            ),
            setup=start_session,
        )


async def _start_pool(
    context: contextvars.Context, pool: TrioPool, nursery: trio.Nursery, run: GuestRun
) -> Pool:
    return Pool(pool, run, context)


def open_pool(**options: Any) -> AbstractAsyncContextManager[Pool]:
    """Run a pool of supervised sessions for the duration of an asyncio ``async with`` block.

    ``async with livemesh.aio.open_pool(max_sessions=100) as pool:`` takes what
    :func:`livemesh.open_pool` takes. A ``handle_store`` written for asyncio runs on the loop;
    ``on_session_error`` must be a plain function (it is called synchronously, on the loop's
    thread).

    Args:
        **options: :func:`livemesh.open_pool`'s keyword arguments.

    Returns:
        An async context manager yielding the :class:`Pool`.

    Raises:
        ConfigError: A bad option, at the call.
    """
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    check_sync("on_session_error", options.get("on_session_error"))
    if "handle_store" in options:
        options["handle_store"] = adapt_handle_store(options["handle_store"], loop, context)
    return TrioBlock(trio_open_pool(**options), setup=functools.partial(_start_pool, context))
