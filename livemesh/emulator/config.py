"""Every knob of the emulator in two frozen attrs classes (all defaulted), so tests shrink time.

:class:`EmulatorConfig` says what the service does; :class:`FaultConfig` says how it misbehaves on
purpose (seeded, so a failing run can be replayed). Limits shared with the pool live in
:class:`livemesh.limits.ServiceLimits`.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from livemesh.emulator.families import DEFAULT_FAMILIES, ModelFamily
from livemesh.limits import ServiceLimits

DEFAULT_LIVE_MODELS: tuple[str, ...] = tuple(name for family in DEFAULT_FAMILIES for name in family.models)
"""Models that answer ``bidiGenerateContent`` (listed by REST, accepted in setup), current first."""

DEFAULT_OTHER_MODELS: tuple[str, ...] = ("gemini-2.5-flash", "gemini-2.5-pro", "text-embedding-004")
"""Models listed by REST without ``bidiGenerateContent`` (a setup naming one is refused with 1008)."""


@attrs.frozen(kw_only=True)
class FaultConfig:
    """Deliberate misbehaviour, deterministic for a given ``seed``, to test a client's recovery.

    Probabilities apply per server message the emulator is about to send (after setup); each
    connection draws from its own ``random.Random(f"{seed}:{connection_number}")``, so a failing
    run replays with the same seed and traffic. One draw decides drop, 1011 close or malformed
    frame in that order, so their probabilities add up (keep the sum at most 1).
    """

    seed: int = 0
    """Seeds every connection's draws: change it to see other failure orders."""
    drop_probability: float = 0.0
    """Abrupt drop (TCP closed, no close frame; the client sees 1006)."""
    drop_after_messages: int | None = None
    """Drop every connection abruptly after it has sent this many server messages (after setup)."""
    close_1011_probability: float = 0.0
    """Close with 1011 "Internal error occurred." instead of sending the message."""
    go_away_storm_interval_s: float | None = None
    """Send a goAway (time_left = ``limits.go_away_notice_s``) this often on every connection."""
    silent_after_go_away: bool = False
    """After any goAway, send nothing more (the connection is then closed at its deadline)."""
    latency_s: float = 0.0
    """Added before each server message."""
    jitter_s: float = 0.0
    """Uniform random extra latency in ``[0, jitter_s)`` before each server message."""
    malformed_probability: float = 0.0
    """Replace a server message with a frame that is not valid JSON."""

    @property
    def active(self) -> bool:
        """True if any per-message fault can fire (saves the draw on the fast path)."""
        return bool(
            self.drop_probability
            or self.drop_after_messages is not None
            or self.close_1011_probability
            or self.latency_s
            or self.jitter_s
            or self.malformed_probability
        )


@attrs.frozen(kw_only=True)
class EmulatorConfig:
    """What the emulator serves and how. Defaults are fast (no artificial delays) for tests.

    Shrink ``limits`` to seconds to run whole rotation cycles in a test, add delays to look like
    the real service, and ``faults`` to misbehave on purpose.
    """

    host: str = "127.0.0.1"
    """The address to listen on (loopback by default: nothing outside the machine connects)."""
    port: int = 0
    """0 picks a free port; read the real one from ``emu.url``."""
    limits: ServiceLimits = attrs.field(factory=ServiceLimits)
    """The service's limits to enforce: connection lifetime and ``goAway`` notice, session
    budgets, handle validity, context windows, concurrent sessions."""
    api_keys: frozenset[str] | None = attrs.field(default=None, repr=False)
    """Accepted API keys; None accepts any non-empty key."""
    bearer_tokens: frozenset[str] | None = attrs.field(default=None, repr=False)
    """Accepted Vertex bearer tokens; None accepts any non-empty token."""
    live_models: tuple[str, ...] = DEFAULT_LIVE_MODELS
    """Models that answer ``bidiGenerateContent``: listed by REST, accepted in setup (any other
    name is refused with 1008 "not found")."""
    other_models: tuple[str, ...] = DEFAULT_OTHER_MODELS
    """Models listed by REST without ``bidiGenerateContent``, so model pickers can be tested."""
    families: tuple[ModelFamily, ...] = DEFAULT_FAMILIES
    """How each Live model behaves (:mod:`livemesh.emulator.families`)."""
    stream_function_args: bool = False
    """Send function calls with streamed arguments: ``toolCall`` messages whose call carries
    ``partialArgs`` pieces and ``willContinue: true``, then one with ``willContinue: false``."""
    first_chunk_delay_s: float = 0.0
    """Seconds before a reply's first chunk (the model's time to first token)."""
    chunk_interval_s: float = 0.0
    """Seconds between a reply's chunks."""
    chunks_per_reply: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    """``modelTurn`` chunks per reply (at least 2 are sent, so every reply streams: 1 acts as 2)."""
    speech_chars_per_s: float = attrs.field(default=15.0, validator=attrs.validators.gt(0))
    """How fast the scripted voice "speaks": the reply tone lasts len(text)/this seconds."""
    resumption_update_interval_s: float = attrs.field(default=5.0, validator=attrs.validators.gt(0))
    """A fresh handle this often while the session is resumable (idle or taking input)."""
    refuse_resume_while_open: bool = True
    """Resuming a session whose previous connection is still open is refused with 1011, as the
    service has been reported to do."""
    resume_grace_s: float = 0.25
    """How long a resume waits for the old connection to finish closing before being refused."""
    abort_input_during_blocking_call: bool = False
    """Close 1008 "The operation was aborted." on realtime audio or video while a BLOCKING call waits,
    as the service has been reported to do (off by default)."""
    max_sessions: int = 10_000
    """Live connections at once; more are refused with 1011 "The service is currently unavailable."."""
    max_frame_bytes: int = attrs.field(default=16 * 1024 * 1024, validator=attrs.validators.ge(1024))
    """Largest client frame accepted; a bigger one closes 1009 "Message too big."."""
    max_concurrent_per_key: int | None = None
    """Concurrent live connections per API key (or per token's key); None uses
    ``limits.concurrent_sessions``. Over it: close 1011 with RESOURCE_EXHAUSTED quota text."""
    max_handles_per_session: int = 64
    """Newest resumption handles kept per session; older ones stop resolving."""
    max_stored_sessions: int = 100_000
    """Ended sessions remembered for resumption; the oldest are forgotten first."""
    max_pending_calls: int = 128
    """Tool calls awaiting a response per connection; more ends it with 1011."""
    setup_timeout_s: float = 30.0
    """A connection that sends no setup this long is closed."""
    http_idle_timeout_s: float = 60.0
    """An HTTP connection idle this long (or a request this slow) is closed."""
    send_queue_size: int = attrs.field(default=64, validator=attrs.validators.ge(1))
    """Server frames queued per connection before the model waits for the socket (backpressure)."""
    close_timeout_s: float = 2.0
    """How long to wait for the client's close frame after sending ours."""
    faults: FaultConfig = attrs.field(factory=FaultConfig)
    """How every connection misbehaves (default: not at all)."""
    faults_by_key: Mapping[str, FaultConfig] = attrs.field(factory=dict, repr=False)
    """Faults for connections made with one API key (or token name, or bearer token) instead of
    ``faults``: misbehave towards one session of many."""
    certfile: str | None = None
    """A PEM certificate chain to serve TLS with (it wins over ``tls``)."""
    keyfile: str | None = None
    """The private key for ``certfile`` (``None``: the key is in ``certfile``)."""
    tls: bool = False
    """Serve TLS with a throwaway trustme CA (its PEM is ``emu.ca_pem``, written to ``ca_out``)."""
    ca_out: str | None = None
    """A path to write the throwaway CA's PEM to, for clients in other processes."""

    @property
    def concurrent_limit(self) -> int | None:
        """Concurrent live connections allowed per key: ``max_concurrent_per_key``, else
        ``limits.concurrent_sessions`` (``None``: no limit)."""
        if self.max_concurrent_per_key is not None:
            return self.max_concurrent_per_key
        return self.limits.concurrent_sessions
