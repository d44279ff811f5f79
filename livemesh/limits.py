"""The real service's limits as one named, configurable value, shared by the pool and the emulator.

Sources: ../shared/LIVE_API_NOTES.md section 1 (connection ~10 min with a goAway ~60 s before,
audio sessions 15 min, audio+video 2 min without compression, handles valid 2 h, context windows).
The emulator shrinks these to seconds so a whole rotation cycle runs in a test.
"""

from __future__ import annotations

import attrs


@attrs.frozen(kw_only=True)
class ServiceLimits:
    """Durations in seconds, sizes in tokens."""

    connection_lifetime_s: float = 600.0
    go_away_notice_s: float = 60.0
    audio_session_s: float = 900.0
    audio_video_session_s: float = 120.0
    handle_validity_s: float = 7200.0
    context_window_native_audio: int = 131_072
    context_window_default: int = 32_768
    concurrent_sessions: int | None = None  # per project/key; 3 on a free tier, None = unlimited

    def session_budget_s(self, *, video: bool) -> float:
        """How long a session without compression may last."""
        return self.audio_video_session_s if video else self.audio_session_s


DEFAULT_LIMITS = ServiceLimits()
