"""A session's life around its connections: credentials, the tool runner, the connection manager,
and the end (channels closed, ``on_error``/``on_close`` called).

:meth:`Lifecycle.run` is the body of ``Session.run``; :func:`core_config` the core's view of a
:class:`~livemesh.session.SessionConfig`.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs
import trio

from livemesh import models
from livemesh.auth import Auth, redact, secrets_of
from livemesh.errors import LivemeshError, SessionError
from livemesh.session.config import SessionConfig
from livemesh.session.connections import ConnectFn, Connections
from livemesh.session.core import CoreConfig
from livemesh.session.links import Links, ToolWork
from livemesh.session.reader import HandleHook, safe_callback
from livemesh.session.toolrunner import run_tools

__all__ = ["Lifecycle", "core_config"]


@attrs.define(eq=False)
class Lifecycle:
    """Runs one session (see the module docstring)."""

    links: Links
    connect: ConnectFn
    on_handle: HandleHook | None
    rng: random.Random | None
    connections: Connections | None = None
    auth: Auth | None = None
    finished: trio.Event = attrs.Factory(trio.Event)

    async def run(self, started: Callable[[], None]) -> None:
        """Until the session is closed (returns) or fails (raises its :class:`SessionError`)."""
        links = self.links
        core, config = links.core, links.config
        core.start()
        try:
            self.auth = config.resolved_auth()
            self.connections = Connections(
                links, self.auth, self.connect, self.on_handle, self.scrub, rng=self.rng
            )
            tools = {t.name: t for t in config.function_tools}
            if not (tools or config.callbacks.on_tool_call is not None):
                # Nothing can start a tool here: no nursery, no tool runner, no tool channel.
                try:
                    await self.connections.run(started)
                except LivemeshError as exc:
                    self.fail(exc)
            else:
                work, work_out = trio.open_memory_channel[ToolWork](config.max_running_tools)
                links.tool_work = work
                async with trio.open_nursery() as nursery:
                    await nursery.start(run_tools, links, work_out, tools)
                    try:
                        await self.connections.run(started)
                    except LivemeshError as exc:
                        self.fail(exc)  # caught here, not as a group outside the nursery
                    finally:
                        nursery.cancel_scope.cancel()
        except LivemeshError as exc:
            self.fail(exc)
        finally:
            with trio.CancelScope(shield=True):
                await self._finish()
        if core.error is not None:
            raise core.error

    def fail(self, exc: LivemeshError) -> None:
        if self.links.core.fail(self.scrub(exc)):
            self.links.log.warning("session failed: %s", self.links.core.error)

    def scrub(self, exc: LivemeshError) -> LivemeshError:
        """``exc`` with any credential the server may have echoed replaced by ``<redacted>``."""
        secrets = secrets_of(self.auth) if self.auth is not None else ()
        text = str(exc)
        reason = getattr(exc, "reason", None)
        if not any(secret and (secret in text or (reason and secret in reason)) for secret in secrets):
            return exc
        clean: LivemeshError
        if isinstance(exc, SessionError):
            clean = type(exc)(
                redact(text, *secrets), code=exc.code, reason=redact(reason, *secrets) if reason else reason
            )
        else:
            clean = type(exc)(redact(text, *secrets))
        clean.__cause__ = None
        return clean

    async def _finish(self) -> None:
        links = self.links
        links.core.finish()
        links.inbox_in.close()
        links.outbox.close()
        links.wakeup.close()
        if links.tool_work is not None:
            links.tool_work.close()
        links.notify()
        callbacks = links.config.callbacks
        error = links.core.error
        if error is not None:
            await safe_callback(links, callbacks.on_error, error)
        await safe_callback(links, callbacks.on_close, error)
        self.finished.set()


def core_config(config: SessionConfig) -> CoreConfig:
    """The core's view of ``config`` (plain values: the core imports nothing of trio's)."""
    rotation = config.rotation
    limits = config.limits
    behavior = models.behavior_of(config.model)
    activity = (
        config.realtime_input_config.automatic_activity_detection if config.realtime_input_config else None
    )
    return CoreConfig(
        transparent=config.transparent,
        resumption=config.resumption_enabled,
        prove_by_ping=rotation.prove_by_ping,
        hold_during_turn=rotation.hold_during_turn,
        on_go_away=rotation.on_go_away,
        timer=rotation.timer,
        margin_s=rotation.margin_s,
        quiet_timeout_s=rotation.quiet_timeout_s,
        handle_timeout_s=rotation.handle_timeout_s,
        settle_min_s=rotation.settle_min_s,
        settle_max_s=rotation.settle_max_s,
        connection_lifetime_s=limits.connection_lifetime_s,
        go_away_notice_s=limits.go_away_notice_s,
        close_timeout_s=config.close_timeout,
        # Where new input cancels a BLOCKING call (livemesh.models), holding it would keep the user
        # from interrupting: never held there.
        hold_input_during_tool_calls=(
            config.hold_input_during_tool_calls and behavior.holds_input_for_blocking_calls
        ),
        cancel_tools_on_interrupt=config.cancel_tools_on_interrupt,
        manual_vad=bool(activity is not None and activity.disabled),
        hold_limit=config.hold_limit,
        replay_limit_bytes=config.replay_limit_bytes,
        max_attempts=config.retry.max_attempts,
        tools={t.name: not behavior.blocks(t.declaration.behavior) for t in config.function_tools},
        non_blocking_names=config.non_blocking_names,
        tool_callback=config.callbacks.on_tool_call is not None,
        max_calls_per_tool_call=config.max_calls_per_tool_call,
        max_running_tools=config.max_running_tools,
    )
