"""Every knob of the emulator in two frozen attrs classes (all defaulted), so tests shrink time.

:class:`EmulatorConfig` says what the service does; :class:`FaultConfig` says how it misbehaves on
purpose (seeded, so a failing run can be replayed). Limits shared with the pool live in
:class:`livemesh.limits.ServiceLimits`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any

import attrs

from livemesh import _validators as check
from livemesh.emulator.families import DEFAULT_FAMILIES, ModelFamily
from livemesh.errors import ConfigError
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
    frame in that order, so their probabilities add up: each is in [0, 1] and their sum is at
    most 1 (a larger sum would silently lower the later ones).

    Raises:
        ConfigError: A probability is outside [0, 1], the three add up to more than 1, a delay
            is negative or not finite, ``go_away_storm_interval_s`` is not positive, or
            ``drop_after_messages`` is not an int >= 0.
    """

    seed: int = 0
    """Seeds every connection's draws: change it to see other failure orders."""
    drop_probability: float = attrs.field(default=0.0, validator=check.probability)
    """Abrupt drop (TCP closed, no close frame; the client sees 1006)."""
    drop_after_messages: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(check.at_least(0))
    )
    """Drop every connection abruptly after it has sent this many server messages (after setup)."""
    close_1011_probability: float = attrs.field(default=0.0, validator=check.probability)
    """Close with 1011 "Internal error occurred." instead of sending the message."""
    go_away_storm_interval_s: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(check.positive)
    )
    """Send a goAway (time_left = ``limits.go_away_notice_s``) this often on every connection."""
    silent_after_go_away: bool = False
    """After any goAway, send nothing more (the connection is then closed at its deadline)."""
    latency_s: float = attrs.field(default=0.0, validator=check.non_negative)
    """Added before each server message."""
    jitter_s: float = attrs.field(default=0.0, validator=check.non_negative)
    """Uniform random extra latency in ``[0, jitter_s)`` before each server message."""
    malformed_probability: float = attrs.field(default=0.0, validator=check.probability)
    """Replace a server message with a frame that is not valid JSON."""

    def __attrs_post_init__(self) -> None:
        total = math.fsum((self.drop_probability, self.close_1011_probability, self.malformed_probability))
        if total > 1 + 1e-9:  # 0.1 + 0.2 + 0.7 is a hair over 1 in floating point
            raise ConfigError(
                "FaultConfig's drop_probability, close_1011_probability and malformed_probability "
                f"share one draw: their sum must be at most 1, not {total!r}"
            )

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


def _credentials(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    # A lone string would be searched for substrings ("goo" accepted for "good"): refuse it.
    if value is not None and (isinstance(value, str | bytes) or not isinstance(value, Collection)):
        raise ConfigError(
            f"EmulatorConfig.{attribute.name} must be a set of strings or None, not {type(value).__name__}"
        )


def _port(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check.check_int_at_least("EmulatorConfig.port", value, 0)
    if value > 65535:  # type: ignore[operator]
        raise ConfigError(f"EmulatorConfig.port must be at most 65535, not {value!r}")


@attrs.frozen(kw_only=True)
class EmulatorConfig:
    """What the emulator serves and how. Defaults are fast (no artificial delays) for tests.

    Shrink ``limits`` to seconds to run whole rotation cycles in a test, add delays to look like
    the real service, and ``faults`` to misbehave on purpose.

    Raises:
        ConfigError: A setting is out of range (a negative delay, a timeout or rate that is
            not positive, a count below its minimum, a port outside 0-65535), ``limits`` or
            ``faults`` is of another type, or ``api_keys``/``bearer_tokens`` is a single string
            rather than a collection. The message names the field and the value.
    """

    host: str = "127.0.0.1"
    """The address to listen on (loopback by default: nothing outside the machine connects)."""
    port: int = attrs.field(default=0, validator=_port)
    """0 picks a free port; read the real one from ``emu.url``."""
    limits: ServiceLimits = attrs.field(factory=ServiceLimits, validator=check.instance_of(ServiceLimits))
    """The service's limits to enforce: connection lifetime and ``goAway`` notice, session
    budgets, handle validity, context windows, concurrent sessions."""
    api_keys: frozenset[str] | None = attrs.field(default=None, repr=False, validator=_credentials)
    """Accepted API keys; None accepts any non-empty key."""
    bearer_tokens: frozenset[str] | None = attrs.field(default=None, repr=False, validator=_credentials)
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
    first_chunk_delay_s: float = attrs.field(default=0.0, validator=check.non_negative)
    """Seconds before a reply's first chunk (the model's time to first token)."""
    chunk_interval_s: float = attrs.field(default=0.0, validator=check.non_negative)
    """Seconds between a reply's chunks."""
    chunks_per_reply: int = attrs.field(default=3, validator=check.at_least(1))
    """``modelTurn`` chunks per reply, as many as given (fewer only when the text has fewer
    characters); 1 sends each reply whole, as the service does with a short answer."""
    speech_chars_per_s: float = attrs.field(default=15.0, validator=check.positive)
    """How fast the scripted voice "speaks": the reply tone lasts len(text)/this seconds."""
    resumption_update_interval_s: float = attrs.field(default=5.0, validator=check.positive)
    """A fresh handle this often while the session is resumable (idle or taking input)."""
    refuse_resume_while_open: bool = True
    """Resuming a session whose previous connection is still open is refused with 1011, as the
    service has been reported to do."""
    resume_grace_s: float = attrs.field(default=0.25, validator=check.non_negative)
    """How long a resume waits for the old connection to finish closing before being refused."""
    abort_input_during_blocking_call: bool = False
    """Close 1008 "The operation was aborted." on realtime audio or video while a BLOCKING call waits,
    as the service has been reported to do (off by default)."""
    max_sessions: int = attrs.field(default=10_000, validator=check.at_least(0))
    """Live connections at once; more are refused with 1011 "The service is currently unavailable."."""
    max_frame_bytes: int = attrs.field(default=16 * 1024 * 1024, validator=check.at_least(1024))
    """Largest client frame accepted; a bigger one closes 1009 "Message too big."."""
    max_concurrent_per_key: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(check.at_least(0))
    )
    """Concurrent live connections per API key (or per token's key); None uses
    ``limits.concurrent_sessions``. Over it: close 1011 with RESOURCE_EXHAUSTED quota text."""
    max_handles_per_session: int = attrs.field(default=64, validator=check.at_least(1))
    """Newest resumption handles kept per session; older ones stop resolving."""
    max_stored_sessions: int = attrs.field(default=100_000, validator=check.at_least(0))
    """Ended sessions remembered for resumption; the oldest are forgotten first."""
    max_pending_calls: int = attrs.field(default=128, validator=check.at_least(0))
    """Tool calls awaiting a response per connection; more ends it with 1011."""
    setup_timeout_s: float = attrs.field(default=30.0, validator=check.positive)
    """A connection that sends no setup this long is closed."""
    http_idle_timeout_s: float = attrs.field(default=60.0, validator=check.positive)
    """An HTTP connection idle this long (or a request this slow) is closed."""
    send_queue_size: int = attrs.field(default=64, validator=check.at_least(1))
    """Server frames queued per connection before the model waits for the socket (backpressure)."""
    close_timeout_s: float = attrs.field(default=2.0, validator=check.positive)
    """How long to wait for the client's close frame after sending ours."""
    faults: FaultConfig = attrs.field(factory=FaultConfig, validator=check.instance_of(FaultConfig))
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
