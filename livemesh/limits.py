"""The real service's limits as one named, configurable value, shared by the pool and the emulator.

Sources: the Live API session management guide (ai.google.dev/gemini-api/docs/live-session:
connections last about 10 minutes, audio sessions 15 minutes and audio+video sessions 2 minutes
without context window compression, resumption handles valid 2 hours) and the Firebase AI Logic
limits page (firebase.google.com/docs/ai-logic/live-api/limits-and-specs: the ``goAway`` notice,
context windows, concurrent sessions per project). The emulator shrinks these to seconds so a
whole rotation cycle runs in a test.
"""

from __future__ import annotations

import attrs

from livemesh import _validators as check


@attrs.frozen(kw_only=True)
class ServiceLimits:
    """The Live API's limits: when connections and sessions end, how long handles last.

    One value shared by the session (its connection-age timer), the pool (its rotation planner
    and admission) and the emulator (which enforces them, shrunk to seconds in tests). Durations
    are in seconds, sizes in tokens. Change a value when the service's changes before livemesh
    does (or your tier differs), or shrink them all to run the emulator's rotations in seconds.

    Raises:
        ConfigError: A duration is not a positive number of seconds, a context window is not an
            int >= 1, or ``concurrent_sessions`` is neither ``None`` nor an int >= 1. The message
            names the field and the value.
    """

    connection_lifetime_s: float = attrs.field(default=600.0, validator=check.positive)
    """How long one WebSocket connection lasts before the service ends it (about 10 minutes);
    a session moves to a fresh connection before then."""
    go_away_notice_s: float = attrs.field(default=60.0, validator=check.positive)
    """How long before that end the service sends ``goAway`` (and how much time a ``goAway``
    without ``timeLeft`` is taken to leave)."""
    audio_session_s: float = attrs.field(default=900.0, validator=check.positive)
    """How long an audio session lasts without context window compression."""
    audio_video_session_s: float = attrs.field(default=120.0, validator=check.positive)
    """The same for a session that has sent video."""
    handle_validity_s: float = attrs.field(default=7200.0, validator=check.positive)
    """How long a resumption handle stays valid after the session's last connection ended; also
    how long handle stores keep a conversation's handle by default."""
    context_window_native_audio: int = attrs.field(default=131_072, validator=check.at_least(1))
    """The context window of native-audio models, in tokens."""
    context_window_default: int = attrs.field(default=32_768, validator=check.at_least(1))
    """The context window of the other Live models, in tokens."""
    concurrent_sessions: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(check.at_least(1))
    )
    """Concurrent sessions allowed per project (3 on the free tier), or ``None`` for no limit; a
    pool never runs more than this many at once, and the emulator refuses more per key."""

    def session_budget_s(self, *, video: bool) -> float:
        """How long a session without context window compression may last.

        Args:
            video: Whether the session sends video (its budget is then much shorter).

        Returns:
            The session budget in seconds.
        """
        return self.audio_video_session_s if video else self.audio_session_s


DEFAULT_LIMITS = ServiceLimits()
"""The real service's limits, used wherever no ``limits=`` is given."""
