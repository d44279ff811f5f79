"""Every Live API message as an attrs class (sans-IO: no sockets, no trio).

Treat messages as values: build, send or read them, don't mutate them after handing them over.
They are not ``frozen`` on purpose: a frozen attrs ``__init__`` costs about 4x a plain one
(900 ns vs 240 ns for nine fields, measured here), and a decoded audio frame builds five of them.

Field names are the Python (snake_case) spelling of the API's camelCase JSON names; the converter
in :mod:`livemesh.wire.codec` maps between them. Every field is optional (``None`` = absent on the
wire), as in the API's protobuf, except where the API requires a value.

Enum-valued fields are plain ``str`` (constants in :class:`Modality`, :class:`Behavior`, ...), so a
value added by the service tomorrow decodes today instead of failing the session.

Integers marked :data:`Int64` travel as JSON strings (protobuf's JSON mapping) and decode from
either a string or a number; :data:`Duration` is seconds as a float, ``"9.5s"`` on the wire.
"""

from __future__ import annotations

from typing import Any, NewType

import attrs

Int64 = NewType("Int64", int)
"""An int64 protobuf field: written as a JSON string, read from a string or a number."""

Duration = NewType("Duration", float)
"""A protobuf Duration in seconds: ``"9.5s"`` on the wire."""

JSONObject = dict[str, Any]
"""Free-form JSON (function args and responses, JSON schemas): passed through untouched."""


class Modality:
    TEXT = "TEXT"
    AUDIO = "AUDIO"
    IMAGE = "IMAGE"


class Behavior:
    BLOCKING = "BLOCKING"
    NON_BLOCKING = "NON_BLOCKING"


class Scheduling:
    SILENT = "SILENT"
    WHEN_IDLE = "WHEN_IDLE"
    INTERRUPT = "INTERRUPT"


class StartSensitivity:
    HIGH = "START_SENSITIVITY_HIGH"
    LOW = "START_SENSITIVITY_LOW"


class EndSensitivity:
    HIGH = "END_SENSITIVITY_HIGH"
    LOW = "END_SENSITIVITY_LOW"


class ActivityHandling:
    START_OF_ACTIVITY_INTERRUPTS = "START_OF_ACTIVITY_INTERRUPTS"
    NO_INTERRUPTION = "NO_INTERRUPTION"


class TurnCoverage:
    TURN_INCLUDES_ONLY_ACTIVITY = "TURN_INCLUDES_ONLY_ACTIVITY"
    TURN_INCLUDES_ALL_INPUT = "TURN_INCLUDES_ALL_INPUT"


class MediaResolution:
    LOW = "MEDIA_RESOLUTION_LOW"
    MEDIUM = "MEDIA_RESOLUTION_MEDIUM"
    HIGH = "MEDIA_RESOLUTION_HIGH"


# --------------------------------------------------------------------------- content


@attrs.define
class Blob:
    """Inline bytes with a MIME type (``inlineData``): audio ``audio/pcm;rate=16000``, JPEG frames."""

    data: bytes = b""
    mime_type: str | None = None


@attrs.define
class FileData:
    file_uri: str | None = None
    mime_type: str | None = None


@attrs.define
class FunctionCall:
    name: str | None = None
    args: JSONObject | None = None
    id: str | None = None


@attrs.define
class FunctionResponse:
    """The answer to one :class:`FunctionCall`; ``id`` is required on the Gemini API."""

    id: str | None = None
    name: str | None = None
    response: JSONObject | None = None
    will_continue: bool | None = None
    scheduling: str | None = None  # Scheduling.*, NON_BLOCKING functions only


@attrs.define
class ExecutableCode:
    language: str | None = None
    code: str | None = None


@attrs.define
class CodeExecutionResult:
    outcome: str | None = None
    output: str | None = None


@attrs.define
class Part:
    text: str | None = None
    inline_data: Blob | None = None
    file_data: FileData | None = None
    function_call: FunctionCall | None = None
    function_response: FunctionResponse | None = None
    executable_code: ExecutableCode | None = None
    code_execution_result: CodeExecutionResult | None = None
    thought: bool | None = None
    thought_signature: bytes | None = None


@attrs.define
class Content:
    parts: list[Part] | None = None
    role: str | None = None  # "user" | "model"


# --------------------------------------------------------------------------- setup


@attrs.define
class PrebuiltVoiceConfig:
    voice_name: str | None = None


@attrs.define
class VoiceConfig:
    prebuilt_voice_config: PrebuiltVoiceConfig | None = None


@attrs.define
class SpeechConfig:
    voice_config: VoiceConfig | None = None
    language_code: str | None = None


@attrs.define
class ThinkingConfig:
    thinking_budget: int | None = None
    include_thoughts: bool | None = None


@attrs.define
class GenerationConfig:
    response_modalities: list[str] | None = None
    speech_config: SpeechConfig | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: float | None = None
    max_output_tokens: int | None = None
    candidate_count: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    media_resolution: str | None = None  # MediaResolution.*
    thinking_config: ThinkingConfig | None = None
    enable_affective_dialog: bool | None = None


@attrs.define
class FunctionDeclaration:
    """``parameters`` is an OpenAPI-style schema (types may be uppercase, as the SDK sends them)."""

    name: str | None = None
    description: str | None = None
    parameters: JSONObject | None = None
    parameters_json_schema: Any | None = None
    response: JSONObject | None = None
    behavior: str | None = None  # Behavior.*


@attrs.define
class Tool:
    function_declarations: list[FunctionDeclaration] | None = None
    google_search: JSONObject | None = None
    code_execution: JSONObject | None = None
    url_context: JSONObject | None = None


@attrs.define
class AutomaticActivityDetection:
    disabled: bool | None = None
    start_of_speech_sensitivity: str | None = None  # StartSensitivity.*
    end_of_speech_sensitivity: str | None = None  # EndSensitivity.*
    prefix_padding_ms: int | None = None
    silence_duration_ms: int | None = None


@attrs.define
class RealtimeInputConfig:
    automatic_activity_detection: AutomaticActivityDetection | None = None
    activity_handling: str | None = None  # ActivityHandling.*
    turn_coverage: str | None = None  # TurnCoverage.*


@attrs.define
class SessionResumptionConfig:
    """``handle`` resumes a previous session; ``transparent`` (Vertex only) asks for message indices."""

    handle: str | None = None
    transparent: bool | None = None


@attrs.define
class SlidingWindow:
    target_tokens: Int64 | None = None


@attrs.define
class ContextWindowCompressionConfig:
    trigger_tokens: Int64 | None = None
    sliding_window: SlidingWindow | None = None


@attrs.define
class AudioTranscriptionConfig:
    """Empty object on the wire: its presence turns transcription on."""


@attrs.define
class ProactivityConfig:
    proactive_audio: bool | None = None


@attrs.define
class Setup:
    """The first client message. ``model`` is ``models/NAME`` (or a Vertex publisher path)."""

    model: str = ""
    generation_config: GenerationConfig | None = None
    system_instruction: Content | None = None
    tools: list[Tool] | None = None
    realtime_input_config: RealtimeInputConfig | None = None
    session_resumption: SessionResumptionConfig | None = None
    context_window_compression: ContextWindowCompressionConfig | None = None
    input_audio_transcription: AudioTranscriptionConfig | None = None
    output_audio_transcription: AudioTranscriptionConfig | None = None
    proactivity: ProactivityConfig | None = None
    explicit_vad_signal: bool | None = None


# --------------------------------------------------------------------------- client messages


@attrs.define
class ClientContent:
    """Ordered turns appended to the context; interrupts a generation in progress."""

    turns: list[Content] | None = None
    turn_complete: bool | None = None


@attrs.define
class ActivityStart:
    """Manual VAD: the user started speaking (empty object on the wire)."""


@attrs.define
class ActivityEnd:
    """Manual VAD: the user stopped speaking (empty object on the wire)."""


@attrs.define
class RealtimeInput:
    """Streaming input; usually exactly one of these fields is set per message."""

    audio: Blob | None = None
    video: Blob | None = None
    text: str | None = None
    activity_start: ActivityStart | None = None
    activity_end: ActivityEnd | None = None
    audio_stream_end: bool | None = None
    media_chunks: list[Blob] | None = None  # deprecated by the API; still decoded


@attrs.define
class ToolResponse:
    function_responses: list[FunctionResponse] | None = None


CLIENT_ONEOF = ("setup", "client_content", "realtime_input", "tool_response", "context_update")


@attrs.define
class ClientMessage:
    """One client frame: exactly one field set (``context_update`` is passed through raw)."""

    setup: Setup | None = None
    client_content: ClientContent | None = None
    realtime_input: RealtimeInput | None = None
    tool_response: ToolResponse | None = None
    context_update: JSONObject | None = None

    @property
    def kind(self) -> str:
        """The name of the field that is set (``"setup"``, ``"realtime_input"``, ...)."""
        for name in CLIENT_ONEOF:
            if getattr(self, name) is not None:
                return name
        return ""


# --------------------------------------------------------------------------- server messages


@attrs.define
class SetupComplete:
    session_id: str | None = None


@attrs.define
class Transcription:
    text: str | None = None
    finished: bool | None = None


@attrs.define
class ServerContent:
    model_turn: Content | None = None
    turn_complete: bool | None = None
    interrupted: bool | None = None
    generation_complete: bool | None = None
    input_transcription: Transcription | None = None
    output_transcription: Transcription | None = None
    grounding_metadata: JSONObject | None = None
    url_context_metadata: JSONObject | None = None
    turn_complete_reason: str | None = None
    waiting_for_input: bool | None = None


@attrs.define
class ToolCall:
    function_calls: list[FunctionCall] | None = None


@attrs.define
class ToolCallCancellation:
    ids: list[str] | None = None


@attrs.define
class GoAway:
    """The server will close this connection in ``time_left`` seconds."""

    time_left: Duration | None = None


@attrs.define
class SessionResumptionUpdate:
    """A new handle (empty and ``resumable=False`` while generating or while a tool call waits)."""

    new_handle: str | None = None
    resumable: bool | None = None
    last_consumed_client_message_index: Int64 | None = None


@attrs.define
class VoiceActivity:
    """``type`` is the wire name (``{"voiceActivity": {"type": "ACTIVITY_START"}}``); the SDK calls
    it ``voice_activity_type`` in Python and renames it in ``_VoiceActivity_from_mldev``."""

    type: str | None = None  # ACTIVITY_START | ACTIVITY_END
    audio_offset: Duration | None = None


@attrs.define
class VoiceActivityDetectionSignal:
    vad_signal_type: str | None = None


@attrs.define
class ModalityTokenCount:
    modality: str | None = None
    token_count: int | None = None


@attrs.define
class UsageMetadata:
    prompt_token_count: int | None = None
    cached_content_token_count: int | None = None
    response_token_count: int | None = None
    tool_use_prompt_token_count: int | None = None
    thoughts_token_count: int | None = None
    total_token_count: int | None = None
    prompt_tokens_details: list[ModalityTokenCount] | None = None
    cache_tokens_details: list[ModalityTokenCount] | None = None
    response_tokens_details: list[ModalityTokenCount] | None = None
    tool_use_prompt_tokens_details: list[ModalityTokenCount] | None = None


SERVER_ONEOF = (
    "setup_complete",
    "server_content",
    "tool_call",
    "tool_call_cancellation",
    "go_away",
    "session_resumption_update",
    "voice_activity",
    "voice_activity_detection_signal",
)


@attrs.define
class ServerMessage:
    """One server frame: at most one of :data:`SERVER_ONEOF`, plus ``usage_metadata`` riding along."""

    setup_complete: SetupComplete | None = None
    server_content: ServerContent | None = None
    tool_call: ToolCall | None = None
    tool_call_cancellation: ToolCallCancellation | None = None
    go_away: GoAway | None = None
    session_resumption_update: SessionResumptionUpdate | None = None
    voice_activity: VoiceActivity | None = None
    voice_activity_detection_signal: VoiceActivityDetectionSignal | None = None
    usage_metadata: UsageMetadata | None = None

    @property
    def kind(self) -> str:
        """The oneof field that is set, ``"usage_metadata"`` for usage alone, ``""`` for none."""
        for name in SERVER_ONEOF:
            if getattr(self, name) is not None:
                return name
        return "usage_metadata" if self.usage_metadata is not None else ""
