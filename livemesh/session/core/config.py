"""What the core needs to know of a session's configuration: plain values, no I/O types.

The actor builds it from a :class:`~livemesh.session.SessionConfig` (which also carries transport
options, credentials and callbacks the core has no business with), so the core imports nothing
that imports trio.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

__all__ = ["CoreConfig"]


@attrs.frozen(kw_only=True)
class CoreConfig:
    """The core's configuration (see :class:`~livemesh.session.SessionConfig` for each meaning)."""

    transparent: bool = False
    """Vertex ``transparent`` resumption: handles carry the index of the last message consumed."""
    resumption: bool = True
    prove_by_ping: bool = True
    hold_during_turn: bool = True
    on_go_away: bool = True
    timer: bool = True
    margin_s: float = 60.0
    quiet_timeout_s: float = 30.0
    handle_timeout_s: float = 10.0
    settle_min_s: float = 0.02
    settle_max_s: float = 1.0
    connection_lifetime_s: float = 600.0
    go_away_notice_s: float = 60.0
    close_timeout_s: float = 5.0
    hold_input_during_tool_calls: bool = True
    cancel_tools_on_interrupt: bool = True
    manual_vad: bool = False
    hold_limit: int = 1024
    replay_limit_bytes: int = 32 * 1024 * 1024
    max_attempts: int = 6
    tools: Mapping[str, bool] = attrs.field(factory=dict)
    """Names of the tools the session runs itself -> whether each is NON_BLOCKING."""
    non_blocking_names: frozenset[str] = frozenset()
    """Declared-only functions with NON_BLOCKING behaviour."""
    tool_callback: bool = False
    """An ``on_tool_call`` callback answers calls no registered tool handles."""
    max_calls_per_tool_call: int = 128
    max_running_tools: int = 256
