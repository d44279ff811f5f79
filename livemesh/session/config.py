"""Everything a session takes, validated before anything connects, and its translation to ``setup``.

:class:`SessionConfig` covers what the seed's ``Session.start_link`` takes (model, auth,
api_version, generation_config, system_instruction, tools, realtime_input_config,
session_resumption, resume_handle, context_window_compression, transcription, affective dialog,
proactivity, thinking, callbacks) plus what livemesh adds (limits, rotation, retries, buffers).

Users coming from elsewhere can keep their spelling: :meth:`SessionConfig.from_dict` takes the
seed's snake_case keys, google-genai ``LiveConnectConfig`` names (flat ``response_modalities``,
``temperature``, ``speech_config`` ... are folded into ``generation_config``) and camelCase JSON
keys; :meth:`SessionConfig.from_connect_config` takes a ``LiveConnectConfig`` object itself.

Validation happens here, at the call (a :class:`~livemesh.errors.ConfigError`), for what the
service would otherwise refuse with a 1007 after a round trip: two response modalities, wrong
types, a ``transparent`` resumption on the Gemini API (the SDK refuses it too).

No setting is dropped silently. A key livemesh does not know, at any depth and in either
spelling, is a ConfigError naming its path and the closest field name ("did you mean"); a field
of the official SDK the Live API does not take is refused with the reason
(:data:`livemesh.wire.coverage.OMISSIONS`). A field newer than livemesh goes through
``extra_setup``, merged verbatim into the setup message.
"""

from __future__ import annotations

import difflib
import enum
import math
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

import attrs
import orjson
import pybase64

from livemesh import models, wire
from livemesh.auth import Auth, VertexAI, resolve_auth
from livemesh.endpoints import live_url, model_name
from livemesh.errors import ConfigError, DecodeError
from livemesh.limits import DEFAULT_LIMITS, ServiceLimits
from livemesh.session.callbacks import CALLBACK_NAMES, Callbacks
from livemesh.session.tools import FunctionTool, ToolSpec, split_tools
from livemesh.transport import TransportOptions
from livemesh.wire import coverage
from livemesh.wire.fields import UnknownKey, WireField, field_for_key, snake_name, suggest

__all__ = ["RetryPolicy", "RotationPolicy", "SessionConfig"]

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """Bounded reconnect attempts with exponential backoff and full jitter.

    Attempt ``n`` (0-based) waits ``uniform(0, 1) * jitter`` of ``min(max_delay, base_delay * 2**n)``
    plus the rest un-jittered, so thousands of sessions dropped together do not reconnect in the
    same millisecond. The first attempt after a planned move does not wait at all.
    """

    max_attempts: int = attrs.field(default=6, validator=attrs.validators.ge(1))
    base_delay: float = attrs.field(default=0.2, validator=attrs.validators.ge(0))
    max_delay: float = attrs.field(default=10.0, validator=attrs.validators.ge(0))
    jitter: float = attrs.field(default=0.5, validator=[attrs.validators.ge(0), attrs.validators.le(1)])

    def delay(self, attempt: int, uniform: Callable[[], float]) -> float:
        """Seconds to wait before retry ``attempt`` (0-based); ``uniform`` returns [0, 1)."""
        ceiling: float = min(self.max_delay, self.base_delay * math.pow(2.0, attempt))
        return ceiling * (1.0 - self.jitter) + ceiling * self.jitter * uniform()


@attrs.frozen(kw_only=True)
class RotationPolicy:
    """When the session moves itself to a fresh connection before the service cuts it.

    The timer starts when a connection is set up and is independent of the receive loop (the
    service may go silent after ``goAway``: sierra-research/tau2-bench#461). It fires ``margin_s`` before
    ``limits.connection_lifetime_s``; ``goAway`` triggers a move at once. A planned move first waits
    up to ``quiet_timeout_s`` for a quiet point (no generation, no pending tool call, a resumable
    handle) and up to ``handle_timeout_s`` for a fresh handle once input is held.
    """

    on_go_away: bool = True
    timer: bool = True
    margin_s: float = attrs.field(default=60.0, validator=attrs.validators.ge(0))
    quiet_timeout_s: float = attrs.field(default=30.0, validator=attrs.validators.ge(0))
    handle_timeout_s: float = attrs.field(default=10.0, validator=attrs.validators.gt(0))
    settle_min_s: float = attrs.field(default=0.02, validator=attrs.validators.ge(0))
    """Gemini API: a message sent at least this long (or two setup round trips, if longer) before
    a handle arrived is taken as covered by it."""
    settle_max_s: float = attrs.field(default=1.0, validator=attrs.validators.ge(0))
    hold_during_turn: bool = True
    """Gemini API: once a move is wanted, hold input (buffered, not lost) while the model answers,
    so the handle issued right after the turn covers everything sent and the move is exact. The
    cost: the user's barge-in during that answer reaches the server only after the move."""
    prove_by_ping: bool = True
    """Gemini API: a handle read after the pong of a ping sent after some messages proves the
    server consumed them (the writer pings after bursts, user turns and a move's hold). True where
    the server answers a ping only once it consumed what came before it, as the emulator does;
    the service's ordering is not documented. False: timing alone judges (a burst the server was
    still reading when it issued a handle may then be lost on a move)."""


def _structure(value: object, cls: type[T], name: str) -> T:
    """A wire class from itself, a dict (snake_case or camelCase keys, checked at every depth) or
    an object with ``model_dump()`` (a google-genai type); ConfigError otherwise."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping) and callable(getattr(value, "model_dump", None)):
        value = value.model_dump(exclude_none=True, mode="json")  # type: ignore[attr-defined]
    if isinstance(value, Mapping):
        data = _wire_json(value, cls, name)
        try:
            result = wire.converter.structure(data, cls)
        except DecodeError as exc:
            raise ConfigError(f"{name}: {exc.reason}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{name}: {exc}") from None
        return result
    raise ConfigError(f"{name} must be a {cls.__name__} or a dict, not {type(value).__name__}")


def _sdk_renames() -> dict[tuple[type, str], str]:
    """(wire class, the SDK's field name) -> livemesh field name, where the SDK's name is not the
    API's (``model_selection_config`` is ``modelConfig`` on the wire)."""
    out: dict[tuple[type, str], str] = {}
    for key, ours in coverage.RENAMED_FIELDS.items():
        sdk_class, _, sdk_field = key.partition(".")
        cls = getattr(wire, coverage.CLASS_NAMES.get(sdk_class, sdk_class))
        out[(cls, sdk_field)] = ours
    return out


_SDK_RENAMES: Final = _sdk_renames()
_SDK_CLASS: Final = {ours: sdk for sdk, ours in coverage.CLASS_NAMES.items()}


def _field(cls: type, key: str) -> WireField | None:
    field = field_for_key(cls, key)
    if field is None:
        renamed = _SDK_RENAMES.get((cls, snake_name(key)))
        if renamed is not None:
            field = field_for_key(cls, renamed)
    return field


def _unknown(cls: type, path: str, key: str) -> str:
    """Why ``key`` is refused: a setting the Live API does not take (the omission table's reason),
    or a name livemesh does not know (with the closest field name)."""
    sdk_class = _SDK_CLASS.get(cls.__name__, cls.__name__)
    omitted = coverage.omission(sdk_class, snake_name(key))
    where = f"{path}.{key}" if path else key
    if omitted is not None and omitted.kind == "omitted":
        return f"{where} is not sent: {omitted.reason}"
    return str(UnknownKey(path, key, suggest(key, cls)))


def _wire_json(data: Mapping[str, Any], cls: type, path: str) -> dict[str, Any]:
    """A user's setting for ``cls`` as wire JSON (camelCase keys), every key checked at every depth.

    Raises ConfigError naming every key that is no field of its class, with the closest name.
    """
    problems: list[str] = []
    out = _convert(data, cls, path, problems)
    if problems:
        raise ConfigError("; ".join(problems))
    return out


def _convert(data: Mapping[str, Any], cls: type, path: str, problems: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = str(raw_key)
        field = _field(cls, key)
        if field is None:
            problems.append(_unknown(cls, path, key))
            continue
        if value is None:
            continue
        inner = field.message_class
        where = f"{path}.{key}" if path else key
        if inner is None:
            out[field.json_name] = _jsonable(value)
        elif isinstance(value, list | tuple):
            out[field.json_name] = [
                _convert_one(item, inner, f"{where}[{index}]", problems) for index, item in enumerate(value)
            ]
        else:
            out[field.json_name] = _convert_one(value, inner, where, problems)
    return out


def _convert_one(value: Any, cls: type, path: str, problems: list[str]) -> Any:
    if attrs.has(type(value)):
        return wire.converter.unstructure(value)  # a message object: checked when it was built
    if not isinstance(value, Mapping) and callable(getattr(value, "model_dump", None)):
        value = value.model_dump(exclude_none=True, mode="json")
    if isinstance(value, Mapping):
        return _convert(value, cls, path, problems)
    return value  # not an object: the converter names the type error


def _jsonable(value: Any) -> Any:
    """Python values as the JSON the converter reads: enums as their value, bytes as base64."""
    if attrs.has(type(value)):
        return wire.converter.unstructure(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes | bytearray | memoryview):
        return pybase64.b64encode_as_string(bytes(value))
    return value


def _opt(value: object, cls: type[T], name: str) -> T | None:
    return None if value is None else _structure(value, cls, name)


def _generation_config(value: object) -> wire.GenerationConfig | None:
    return _opt(value, wire.GenerationConfig, "generation_config")


def _realtime_input_config(value: object) -> wire.RealtimeInputConfig | None:
    return _opt(value, wire.RealtimeInputConfig, "realtime_input_config")


def _compression(value: object) -> wire.ContextWindowCompressionConfig | None:
    return _opt(value, wire.ContextWindowCompressionConfig, "context_window_compression")


def _proactivity(value: object) -> wire.ProactivityConfig | None:
    return _opt(value, wire.ProactivityConfig, "proactivity")


def _thinking(value: object) -> wire.ThinkingConfig | None:
    return _opt(value, wire.ThinkingConfig, "thinking")


def _optional_bool(value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ConfigError(f"expected a bool, not {type(value).__name__}")


def _system_instruction(value: object) -> wire.Content | None:
    if value is None:
        return None
    if isinstance(value, str):
        # As google-genai's t_content writes a string: one text part, role "user".
        return wire.Content(parts=[wire.Part(text=value)], role=wire.Role.USER)
    return _structure(value, wire.Content, "system_instruction")


def _transcription(value: object) -> wire.AudioTranscriptionConfig | None:
    """``True``/``{}`` turns transcription on with the service's defaults, a dict or a config object
    with settings (``{"language_codes": ["en-US"]}``); ``None``/``False`` leaves it off."""
    if value is None or value is False:
        return None
    if value is True:
        return wire.AudioTranscriptionConfig()
    if isinstance(value, bool | str | int | float):
        raise ConfigError(f"transcription must be a bool or a dict, not {type(value).__name__}")
    return _structure(value, wire.AudioTranscriptionConfig, "audio_transcription")


def _history(value: object) -> wire.HistoryConfig | None:
    return _opt(value, wire.HistoryConfig, "history_config")


def _avatar(value: object) -> wire.AvatarConfig | None:
    return _opt(value, wire.AvatarConfig, "avatar_config")


def _safety_settings(value: object) -> tuple[wire.SafetySetting, ...] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        raise ConfigError(f"safety_settings must be a list, not {type(value).__name__}")
    return tuple(
        _structure(item, wire.SafetySetting, f"safety_settings[{i}]") for i, item in enumerate(value)
    )


def _labels(value: object) -> Mapping[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigError("labels must be a dict of str to str")
    return dict(value)


def _extra_setup(value: object) -> Mapping[str, Any] | None:
    """The escape hatch, checked: a JSON object whose known keys are respelled in camelCase
    (so they merge with what livemesh writes) and may only hold objects with new members."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(f"extra_setup must be a dict (JSON object), not {type(value).__name__}")
    try:
        orjson.dumps(value)
    except (orjson.JSONEncodeError, TypeError) as exc:
        raise ConfigError(f"extra_setup must be JSON: {exc}") from None
    return _extra_members(value, wire.Setup, "extra_setup")


def _extra_members(data: Mapping[str, Any], cls: type, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        field = field_for_key(cls, key)
        where = f"{path}.{key}"
        if field is None:
            out[key] = value  # a member livemesh does not know: sent verbatim
        elif field.message_class is not None and typing.get_origin(field.type) is not list:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where} must be an object of members livemesh does not know yet")
            out[field.json_name] = _extra_members(value, field.message_class, where)
        else:
            raise ConfigError(
                f"{where} is a setting livemesh knows: set it with the session's own options "
                "(extra_setup is only for fields newer than livemesh)"
            )
    return out


def _session_resumption(value: object) -> wire.SessionResumptionConfig | None:
    """``True``/``{}`` turns resumption on (the seed's ``session_resumption: %{}``)."""
    if value is None or value is False:
        return None
    if value is True:
        return wire.SessionResumptionConfig()
    return _structure(value, wire.SessionResumptionConfig, "session_resumption")


def _positive_or_none(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{attribute.name} must be a positive number of seconds, not {value!r}")


def _positive_int(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{attribute.name} must be a positive int, not {value!r}")


def _check_model(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
        raise ConfigError(f"model must be a non-empty name without whitespace, not {value!r}")


def _check_type(
    cls: type | tuple[type, ...], label: str
) -> Callable[[object, attrs.Attribute[Any], object], None]:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, cls):
            raise ConfigError(f"{attribute.name} must be {label}, not {type(value).__name__}")

    return check


def _callbacks(value: object) -> Callbacks:
    if value is None:
        return Callbacks()
    if isinstance(value, Callbacks):
        return value
    if isinstance(value, Mapping):
        return Callbacks.from_mapping(value)
    raise ConfigError(
        f"callbacks must be a Callbacks or a dict of on_* callables, not {type(value).__name__}"
    )


def _check_tool_keys(specs: Sequence[ToolSpec]) -> None:
    """Tool dicts are checked key by key like every other setting (a misspelt ``behaviour`` must
    not turn into a silently blocking function)."""
    for index, spec in enumerate(specs):
        if not isinstance(spec, Mapping):
            continue
        data: Mapping[str, Any] = spec
        if "name" in data and not {"function_declarations", "functionDeclarations"} & set(data):
            _wire_json(data, wire.FunctionDeclaration, f"tools[{index}]")  # a bare declaration
        else:
            _wire_json(data, wire.Tool, f"tools[{index}]")


def _tools(value: object) -> tuple[ToolSpec, ...]:
    if value is None:
        return ()
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        value = [value]
    return tuple(value)  # checked (and split) in __attrs_post_init__ via split_tools


@attrs.frozen(kw_only=True)
class SessionConfig:
    """One Live session's configuration. Immutable; :meth:`evolve` makes changed copies.

    ``auth`` may be an :class:`~livemesh.auth.ApiKey` / :class:`~livemesh.auth.VertexAI` /
    :class:`~livemesh.auth.EphemeralToken`, an API key string, or ``None`` (read
    ``GEMINI_API_KEY`` / ``GOOGLE_API_KEY`` when the session opens). ``base_url`` points the
    session at another origin, e.g. the emulator's ``ws://127.0.0.1:PORT``.

    ``tools`` mixes plain Python functions (declared from their signature and run by the session,
    answered automatically), :class:`~livemesh.session.tools.FunctionTool` objects, and
    declarations the caller answers itself (``wire.Tool``, ``wire.FunctionDeclaration``, dicts such
    as ``{"function_declarations": [...]}`` or ``{"google_search": {}}``).
    """

    model: str = attrs.field(validator=_check_model)
    auth: Auth | str | None = attrs.field(default=None, repr=False)
    api_version: str | None = None
    base_url: str | None = None
    allow_insecure: bool = False

    generation_config: wire.GenerationConfig | None = attrs.field(default=None, converter=_generation_config)
    system_instruction: wire.Content | None = attrs.field(default=None, converter=_system_instruction)
    tools: tuple[ToolSpec, ...] = attrs.field(default=(), converter=_tools)
    realtime_input_config: wire.RealtimeInputConfig | None = attrs.field(
        default=None, converter=_realtime_input_config
    )
    session_resumption: wire.SessionResumptionConfig | None = attrs.field(
        factory=wire.SessionResumptionConfig, converter=_session_resumption
    )
    """On by default: seamless reconnects need handles. ``False`` turns it off (a drop then ends
    the session); ``{"transparent": True}`` asks Vertex for exact replay indices."""
    resume_handle: str | None = attrs.field(default=None, repr=False)
    context_window_compression: wire.ContextWindowCompressionConfig | None = attrs.field(
        default=None, converter=_compression
    )
    input_audio_transcription: wire.AudioTranscriptionConfig | None = attrs.field(
        default=None, converter=_transcription
    )
    output_audio_transcription: wire.AudioTranscriptionConfig | None = attrs.field(
        default=None, converter=_transcription
    )
    enable_affective_dialog: bool | None = attrs.field(default=None, converter=_optional_bool)
    proactivity: wire.ProactivityConfig | None = attrs.field(default=None, converter=_proactivity)
    thinking: wire.ThinkingConfig | None = attrs.field(default=None, converter=_thinking)
    explicit_vad_signal: bool | None = attrs.field(default=None, converter=_optional_bool)
    history_config: wire.HistoryConfig | None = attrs.field(default=None, converter=_history)
    """``{"initial_history_in_client_content": True}``: the session starts by taking history
    through ``clientContent`` (for models that otherwise take clientContent only as first input)."""
    avatar_config: wire.AvatarConfig | None = attrs.field(default=None, converter=_avatar)
    safety_settings: tuple[wire.SafetySetting, ...] | None = attrs.field(
        default=None, converter=_safety_settings
    )
    labels: Mapping[str, str] | None = attrs.field(default=None, converter=_labels)
    """Metadata labels for the request (Gemini API)."""
    extra_setup: Mapping[str, Any] | None = attrs.field(default=None, converter=_extra_setup)
    """The escape hatch for a setup field newer than livemesh: a JSON object merged verbatim into
    the ``setup`` message livemesh sends (objects merged key by key, so
    ``{"generationConfig": {"newKnob": 1}}`` adds one member next to the generation settings).
    Keys livemesh knows are refused here: set those with their own option. livemesh does not check
    what it cannot know, so a misspelt key reaches the service, which refuses it (1007)."""

    callbacks: Callbacks = attrs.field(factory=Callbacks, converter=_callbacks)
    tool_timeout: float | None = attrs.field(default=None, validator=_positive_or_none)
    """Default per-call timeout for session-run tools (a FunctionTool's own timeout wins)."""
    hold_input_during_tool_calls: bool = True
    """Hold realtime input while a BLOCKING call is unanswered (reported to cause 1008 otherwise).
    Never held on models where new input cancels a BLOCKING call instead (gemini-3.8-live:
    :mod:`livemesh.models`), so the user can still interrupt."""
    cancel_tools_on_interrupt: bool = True
    """An ``interrupted`` turn cancels its running tools; they are answered with an error."""

    limits: ServiceLimits = attrs.field(
        default=DEFAULT_LIMITS, validator=_check_type(ServiceLimits, "ServiceLimits")
    )
    rotation: RotationPolicy = attrs.field(
        factory=RotationPolicy, validator=_check_type(RotationPolicy, "RotationPolicy")
    )
    retry: RetryPolicy = attrs.field(factory=RetryPolicy, validator=_check_type(RetryPolicy, "RetryPolicy"))
    transport: TransportOptions = attrs.field(
        factory=TransportOptions, validator=_check_type(TransportOptions, "TransportOptions")
    )
    keepalive_interval: float = attrs.field(default=20.0, validator=_positive_or_none)
    keepalive_timeout: float = attrs.field(default=60.0, validator=_positive_or_none)
    setup_timeout: float = attrs.field(default=30.0, validator=_positive_or_none)
    close_timeout: float = attrs.field(default=5.0, validator=_positive_or_none)
    """How long a graceful close waits to flush queued messages and (with resumption) for a
    handle covering all of them, so ``session.resume_handle`` afterwards resumes without loss."""

    outbox_size: int = attrs.field(default=64, validator=_positive_int)
    """Messages queued for the writer; a producer blocks when it is full (backpressure)."""
    inbox_size: int = attrs.field(default=256, validator=_positive_int)
    """Server messages queued for ``async for``; the reader waits when it is full."""
    hold_limit: int = attrs.field(default=1024, validator=_positive_int)
    """Messages held during a planned move or a blocking tool call before producers block."""
    replay_limit_bytes: int = attrs.field(default=32 * 1024 * 1024, validator=_positive_int)
    """Sent-but-unconfirmed messages kept for replay after a drop; beyond it the oldest are
    forgotten and counted in ``metrics.replay_overflow``."""
    max_calls_per_tool_call: int = attrs.field(default=128, validator=_positive_int)
    """The most function calls one ``toolCall`` may carry; more fail the session with
    :class:`~livemesh.errors.ToolCallLimitError` before any is recorded or run (one message of a
    broken or hostile peer must not claim unbounded memory and tasks)."""
    max_running_tools: int = attrs.field(default=256, validator=_positive_int)
    """The most tool calls the session runs at once (each registered tool's call, each
    ``on_tool_call`` batch); a ``toolCall`` that would exceed it fails the session with
    :class:`~livemesh.errors.ToolCallLimitError`."""

    session_id: str | None = None
    """A name for logs and metrics; a random one is made when the session opens if not given."""

    _function_tools: tuple[FunctionTool, ...] = attrs.field(init=False, repr=False, eq=False)
    _wire_tools: tuple[wire.Tool, ...] = attrs.field(init=False, repr=False, eq=False)

    def __new__(cls, *args: Any, **options: Any) -> SessionConfig:
        # An unknown keyword is a ConfigError naming it (and the closest option), not a TypeError.
        unknown = [name for name in options if name not in _OPTION_NAMES]
        if unknown:
            raise ConfigError("; ".join(_unknown_option(name) for name in unknown))
        return super().__new__(cls)

    def __attrs_post_init__(self) -> None:
        _check_tool_keys(self.tools)
        functions, declared = split_tools(self.tools, default_timeout=self.tool_timeout)
        object.__setattr__(self, "_function_tools", functions)
        object.__setattr__(self, "_wire_tools", declared)
        self._check()

    # ------------------------------------------------------------------ validation

    def _check(self) -> None:
        for name in ("api_version", "base_url", "resume_handle", "session_id"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{name} must be a str, not {type(value).__name__}")
        if not isinstance(self.allow_insecure, bool):
            raise ConfigError("allow_insecure must be a bool")
        gen = self.generation_config
        modalities = (gen.response_modalities if gen is not None else None) or []
        if not isinstance(modalities, list) or not all(isinstance(m, str) for m in modalities):
            raise ConfigError("response_modalities must be a list of strings such as ['TEXT'] or ['AUDIO']")
        upper = {m.upper() for m in modalities}
        if len(upper) > 1:
            raise ConfigError(
                f"only one response modality per session (got {sorted(upper)}); "
                "the service refuses two with 1007 'Request contains an invalid argument.'"
            )
        known = wire.known_values(wire.Modality)
        for modality in sorted(upper - set(known)):
            close = difflib.get_close_matches(modality, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"response_modalities: unknown modality {modality!r}{hint}; known: {list(known)}"
            )
        names = [tool.name for tool in self._function_tools]
        names += [d.name or "" for tool in self._wire_tools for d in tool.function_declarations or ()]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ConfigError(f"tool names must be unique: {sorted(duplicates)} declared twice")
        self._check_model_accepts()
        if self.rotation.margin_s >= self.limits.connection_lifetime_s and self.rotation.timer:
            raise ConfigError(
                f"rotation.margin_s ({self.rotation.margin_s}) must be less than "
                f"limits.connection_lifetime_s ({self.limits.connection_lifetime_s})"
            )

    def _generation_config(self) -> wire.GenerationConfig | None:
        """``generation_config`` with the top-level ``enable_affective_dialog`` and ``thinking``
        folded in, as the setup carries it."""
        gen = self.generation_config
        if self.enable_affective_dialog is None and self.thinking is None:
            return gen
        changes: dict[str, Any] = {}
        if self.enable_affective_dialog is not None:
            changes["enable_affective_dialog"] = self.enable_affective_dialog
        if self.thinking is not None:
            changes["thinking_config"] = self.thinking
        return attrs.evolve(gen or wire.GenerationConfig(), **changes)

    def _check_model_accepts(self) -> None:
        """Refuse here what the model would refuse with 1007 at setup (:mod:`livemesh.models`)."""
        if not isinstance(self.model, str) or not self.model:
            return
        sent = wire.Setup(generation_config=self._generation_config(), proactivity=self.proactivity)
        refused = models.refused_settings(models.behavior_of(self.model), sent)
        if refused:
            raise ConfigError(f"{self.model} refuses this setup: " + "; ".join(refused))

    # ------------------------------------------------------------------ derived

    @property
    def function_tools(self) -> tuple[FunctionTool, ...]:
        """The tools this session runs itself (answered automatically)."""
        return self._function_tools

    @property
    def non_blocking_names(self) -> frozenset[str]:
        """Declared-only functions whose calls are NON_BLOCKING: declared so, or declared without
        ``behavior`` on a model where that is the default (:mod:`livemesh.models`)."""
        behavior = models.behavior_of(self.model)
        return frozenset(
            d.name
            for tool in self._wire_tools
            for d in tool.function_declarations or ()
            if d.name and not behavior.blocks(d.behavior)
        )

    @property
    def resumption_enabled(self) -> bool:
        return self.session_resumption is not None or self.resume_handle is not None

    @property
    def transparent(self) -> bool:
        return bool(self.session_resumption is not None and self.session_resumption.transparent)

    @property
    def response_modality(self) -> str | None:
        gen = self.generation_config
        if gen is None or not gen.response_modalities:
            return None
        return gen.response_modalities[0].upper()

    def resolved_auth(self) -> Auth:
        """The credential object (reads the environment when ``auth`` is None)."""
        auth = resolve_auth(self.auth)
        if self.transparent and not isinstance(auth, VertexAI):
            raise ConfigError(
                "session_resumption.transparent works only on Vertex AI (the Gemini API has no "
                "lastConsumedClientMessageIndex); drop it, livemesh resumes seamlessly without it"
            )
        return auth

    def url(self, auth: Auth) -> str:
        return live_url(
            auth, api_version=self.api_version, base_url=self.base_url, allow_insecure=self.allow_insecure
        )

    def setup(self, auth: Auth, *, handle: str | None) -> wire.Setup:
        """The ``setup`` message for one connection, resuming from ``handle`` when given.

        Args:
            auth: The credential (it decides the model's path: ``models/NAME`` or Vertex's).
            handle: A resumption handle, or ``None`` for a new session.

        Returns:
            The setup, with ``extra_setup`` in its ``extra`` (merged into its JSON when encoded).
        """
        gen = self._generation_config()
        tools = list(self._wire_tools)
        if self._function_tools:
            tools.append(wire.Tool(function_declarations=[t.declaration for t in self._function_tools]))
        resumption: wire.SessionResumptionConfig | None = None
        if self.resumption_enabled:
            transparent = self.transparent or None
            resumption = wire.SessionResumptionConfig(handle=handle, transparent=transparent)
        return wire.Setup(
            model=model_name(auth, self.model),
            generation_config=gen,
            system_instruction=self.system_instruction,
            tools=tools or None,
            realtime_input_config=self.realtime_input_config,
            session_resumption=resumption,
            context_window_compression=self.context_window_compression,
            input_audio_transcription=self.input_audio_transcription,
            output_audio_transcription=self.output_audio_transcription,
            proactivity=self.proactivity,
            explicit_vad_signal=self.explicit_vad_signal,
            history_config=self.history_config,
            avatar_config=self.avatar_config,
            safety_settings=list(self.safety_settings) if self.safety_settings is not None else None,
            labels=dict(self.labels) if self.labels is not None else None,
            extra=dict(self.extra_setup) if self.extra_setup else None,
        )

    def evolve(self, **changes: Any) -> SessionConfig:
        """A copy with ``changes`` applied (and validated again).

        Args:
            **changes: Options, by their field names.

        Returns:
            The new config.

        Raises:
            ConfigError: An option is unknown (named, with the closest name) or invalid.
        """
        return attrs.evolve(self, **changes)

    # ------------------------------------------------------------------ other spellings

    @classmethod
    def build(
        cls, config: SessionConfig | Mapping[str, Any] | None = None, /, **options: Any
    ) -> SessionConfig:
        """One config from a ``SessionConfig``, a dict (seed or LiveConnectConfig names) and/or
        keyword options (which win): what ``open_session`` and ``pool.session`` accept alike.

        Args:
            config: A config, a dict of options, or ``None``.
            **options: More options; they win over ``config``'s.

        Returns:
            The config.

        Raises:
            ConfigError: An option is unknown, at any depth, or invalid.
        """
        if isinstance(config, SessionConfig):
            return config.evolve(**options) if options else config
        if config is None:
            return cls.from_dict(options)
        if isinstance(config, Mapping):
            return cls.from_dict({**config, **options})
        raise ConfigError(f"config must be a SessionConfig or a dict, not {type(config).__name__}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **overrides: Any) -> SessionConfig:
        """Build from the seed's keys, google-genai ``LiveConnectConfig`` keys, or camelCase JSON.

        Flat generation keys (``response_modalities``, ``temperature``, ``speech_config``,
        ``thinking_config`` ...) are folded into ``generation_config``; ``on_*`` keys become
        :class:`Callbacks`; the seed's ``project_id``/``location`` with ``auth: "vertex_ai"`` are
        not enough on their own (a token provider is needed), so pass ``auth=VertexAI(...)``.
        An unknown key, here or nested (``generation_config.thinking_config.thinking_levle``), is
        a :class:`ConfigError` naming it and the closest known name: a typo must not silently do
        nothing. ``http_options`` gives ``base_url`` and ``api_version``; its other keys are refused.

        Args:
            data: The options, in any of the spellings above.
            **overrides: Options (by field name) that win over ``data``'s.

        Returns:
            The config.

        Raises:
            ConfigError: A key is unknown (named, with the closest name) or a value invalid.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"from_dict needs a mapping, not {type(data).__name__}")
        merged = {_snake(str(k)): v for k, v in data.items()}
        merged.update(overrides)
        return cls(**_normalise(merged))

    @classmethod
    def from_connect_config(cls, model: str, config: object = None, **overrides: Any) -> SessionConfig:
        """Build from a google-genai ``LiveConnectConfig`` (or its dict) as passed to ``live.connect``.

        livemesh never imports google-genai; any object with ``model_dump()`` (pydantic) works.
        Every field reaches the setup as the SDK would send it, but ``http_options``' headers and
        client settings, which are refused.

        Args:
            model: The model name, as passed to ``connect``.
            config: The ``LiveConnectConfig``, its dict, or ``None``.
            **overrides: SessionConfig options (``auth``, ``base_url`` ...) that win over the config.

        Returns:
            The config.

        Raises:
            ConfigError: A field livemesh cannot send (with the reason) or an invalid value.
        """
        if config is None:
            data: Mapping[str, Any] = {}
        elif isinstance(config, Mapping):
            data = config
        elif hasattr(config, "model_dump"):
            data = config.model_dump(exclude_none=True, mode="json")
        else:
            raise ConfigError(f"config must be a LiveConnectConfig or a dict, not {type(config).__name__}")
        return cls.from_dict({**data, "model": model}, **overrides)


_GENERATION_KEYS: Final = (
    coverage.CONNECT_GENERATION_FIELDS | {"candidate_count", "presence_penalty", "frequency_penalty"}
) - {"thinking_config", "enable_affective_dialog"}
"""Flat keys (google-genai's LiveConnectConfig, the seed's options) folded into generation_config;
``thinking_config`` and ``enable_affective_dialog`` have options of their own."""
_RENAMES: Final = {
    "thinking_config": "thinking",
    "project_id": "project",
    "endpoint": "base_url",
    "url": "base_url",
    "handle": "resume_handle",
}
_OPTION_NAMES: Final = frozenset(a.alias or a.name for a in attrs.fields(SessionConfig) if a.init)
_ACCEPTED_NAMES: Final = sorted(_OPTION_NAMES | _GENERATION_KEYS | set(CALLBACK_NAMES) | set(_RENAMES))


def _unknown_option(name: str) -> str:
    close = difflib.get_close_matches(_snake(name), _ACCEPTED_NAMES, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown session option {name!r}{hint}"


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


def _http_options(value: object, out: dict[str, Any]) -> None:
    """google-genai's ``http_options``: ``base_url`` and ``api_version`` become the session's own
    options; anything else (headers, timeouts, HTTP clients) has no meaning here and is refused."""
    if not isinstance(value, Mapping) and callable(getattr(value, "model_dump", None)):
        value = value.model_dump(exclude_none=True)  # type: ignore[attr-defined]
    if not isinstance(value, Mapping):
        raise ConfigError(f"http_options must be a dict or HttpOptions, not {type(value).__name__}")
    for key, item in value.items():
        name = _snake(str(key))
        if item is None:
            continue
        if name not in ("base_url", "api_version"):
            raise ConfigError(
                f"http_options.{key} is not supported: livemesh's connection settings are the session's "
                "base_url, api_version and transport options"
            )
        if out.get(name) not in (None, item):
            raise ConfigError(f"http_options.{key} ({item!r}) contradicts {name}={out[name]!r}")
        out[name] = item


def _normalise(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    gen: dict[str, Any] = {}
    callbacks: dict[str, Any] = {}
    base_gen = data.pop("generation_config", None)
    http_options = data.pop("http_options", None)
    for key, value in data.items():
        if value is None:
            continue
        if key in CALLBACK_NAMES:
            callbacks[key] = value
        elif key in _GENERATION_KEYS:
            gen[key] = value
        else:
            out[_RENAMES.get(key, key)] = value
    if http_options is not None:
        _http_options(http_options, out)
    if base_gen is not None or gen:
        typed = _generation_config(base_gen)
        if gen:
            flat = _structure(gen, wire.GenerationConfig, "")
            changes = {f.name: getattr(flat, f.name) for f in wire.wire_fields(wire.GenerationConfig)}
            typed = attrs.evolve(
                typed or wire.GenerationConfig(), **{k: v for k, v in changes.items() if v is not None}
            )
        out["generation_config"] = typed
    if callbacks:
        existing = out.get("callbacks")
        if existing is not None:
            raise ConfigError("pass callbacks either as callbacks=... or as on_* keys, not both")
        out["callbacks"] = Callbacks.from_mapping(callbacks)
    if "project" in out or "location" in out:
        raise ConfigError(
            "project/location: pass auth=VertexAI(project=..., location=..., token_provider=...) instead"
        )
    if isinstance(out.get("auth"), str) and out["auth"] in ("gemini", "vertex_ai", ":gemini", ":vertex_ai"):
        if out["auth"].lstrip(":") == "vertex_ai":
            raise ConfigError("auth='vertex_ai': pass auth=VertexAI(project=..., token_provider=...) instead")
        out["auth"] = None  # the seed's :gemini means "key from the environment"
    unknown = [name for name in out if name not in _OPTION_NAMES]
    if unknown:
        raise ConfigError("; ".join(_unknown_option(name) for name in unknown))
    return out
