"""Every Live API message as an attrs class (sans-IO: no sockets, no trio).

Treat messages as values: build, send or read them, don't mutate them after handing them over.
They are not ``frozen`` on purpose: a frozen attrs ``__init__`` costs about 4x a plain one
(900 ns vs 240 ns for nine fields, measured here), and a decoded audio frame builds five of them.

Field names are the Python (snake_case) spelling of the API's camelCase JSON names; the converter
in :mod:`livemesh.wire.codec` maps between them. Every field is optional (``None`` = absent on the
wire), as in the API's protobuf, except where the API requires a value. The classes cover every
field of the official SDK's Live types; :mod:`livemesh.wire.coverage` lists the few left out on
purpose, each with its reason.

Enum-valued fields are plain ``str``, so a value added by the service tomorrow decodes today
instead of failing the session. The values known today are constants on small classes
(:class:`Modality`, :class:`Behavior`, :class:`InteractionStatus`, ...); each enum field names its
class in its metadata (:func:`enum_of`).

Every class ends with ``extra``: the JSON members it does not model. Decoding keeps a member
livemesh does not know there (a field newer than livemesh stays reachable, at any depth, instead
of being thrown away; :func:`livemesh.wire.unknown_fields` lists them), and encoding merges
``extra`` into the class's JSON object verbatim (nested objects merged key by key), which is the
escape hatch for sending a field newer than livemesh.

Integers marked :data:`Int64` travel as JSON strings (protobuf's JSON mapping) and decode from
either a string or a number; :data:`Duration` is seconds as a float, ``"9.5s"`` on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, NewType

import attrs

Int64 = NewType("Int64", int)
"""An int64 protobuf field: written as a JSON string, read from a string or a number."""

Duration = NewType("Duration", float)
"""A protobuf Duration in seconds: ``"9.5s"`` on the wire."""

NullValue = NewType("NullValue", str)
"""protobuf's ``NullValue``: JSON ``null`` on the wire from the service, held as ``"NULL_VALUE"``
(decoded from ``null`` or ``"NULL_VALUE"``; written as ``"NULL_VALUE"``, which protobuf parsers
and the official SDK both read), so a present null is not mistaken for an absent field."""

JSONObject = dict[str, Any]
"""Free-form JSON (function args and responses, JSON schemas): passed through untouched."""

StringMap = dict[str, str]
"""A JSON object of strings (``labels``)."""

EXTRA: Final = "extra"
"""The name of the field every class ends with: JSON members the class does not model."""


EXTRA_FIELD: Final[Mapping[str, Any]] = {"extra": True}
"""The metadata of every class's ``extra`` field."""

SECRET: Final[Mapping[str, Any]] = {"secret": True}
"""The metadata of fields that may hold a credential (a resumption handle, a tool's API key):
their value never appears in a repr."""


def enum_of(field: attrs.Attribute[Any]) -> type | None:
    """The constants class of an enum-valued field (``None`` for other fields).

    Args:
        field: An attrs field of a message class (``attrs.fields(wire.Part).media_processing``).

    Returns:
        Its constants class, such as :class:`MediaProcessing`.
    """
    constants: type | None = field.metadata.get("enum")
    return constants


def known_values(constants: type) -> tuple[str, ...]:
    """The values a constants class knows, in definition order (``known_values(Modality)``).

    Args:
        constants: A constants class such as :class:`Modality`.

    Returns:
        Its string values (``("TEXT", "IMAGE", "AUDIO", "VIDEO")``).
    """
    return tuple(v for k, v in vars(constants).items() if k.isupper() and isinstance(v, str))


# --------------------------------------------------------------------------- enum values
# Values known today (google-genai 3.6.1's enums, *_UNSPECIFIED members left out). Fields keep
# plain strings: a value not listed here decodes and encodes unchanged.


class Modality:
    TEXT = "TEXT"
    IMAGE = "IMAGE"
    AUDIO = "AUDIO"
    VIDEO = "VIDEO"


class MediaModality:
    """The modality of a token count (``ModalityTokenCount.modality``)."""

    TEXT = "TEXT"
    IMAGE = "IMAGE"
    VIDEO = "VIDEO"
    AUDIO = "AUDIO"
    DOCUMENT = "DOCUMENT"


class Role:
    USER = "user"
    MODEL = "model"


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
    TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO = "TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO"


class MediaResolution:
    LOW = "MEDIA_RESOLUTION_LOW"
    MEDIUM = "MEDIA_RESOLUTION_MEDIUM"
    HIGH = "MEDIA_RESOLUTION_HIGH"


class PartMediaResolutionLevel:
    LOW = "MEDIA_RESOLUTION_LOW"
    MEDIUM = "MEDIA_RESOLUTION_MEDIUM"
    HIGH = "MEDIA_RESOLUTION_HIGH"
    ULTRA_HIGH = "MEDIA_RESOLUTION_ULTRA_HIGH"


class MediaProcessing:
    STATIC = "STATIC"
    AGENTIC = "AGENTIC"


class ThinkingLevel:
    MINIMAL = "MINIMAL"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    XHIGH = "XHIGH"


class TranscriptionMode:
    VERBATIM = "VERBATIM"
    SMART = "SMART"


class InteractionStatus:
    """``serverContent.interactionStatus``: IDLE ends an interaction (the SDK's ``receive()``
    stops there, falling back to ``turnComplete`` when the status is absent)."""

    IN_PROGRESS = "IN_PROGRESS"
    REQUIRES_ACTION = "REQUIRES_ACTION"
    IDLE = "IDLE"


class TurnCompleteReason:
    MALFORMED_FUNCTION_CALL = "MALFORMED_FUNCTION_CALL"
    RESPONSE_REJECTED = "RESPONSE_REJECTED"
    NEED_MORE_INPUT = "NEED_MORE_INPUT"
    PROHIBITED_INPUT_CONTENT = "PROHIBITED_INPUT_CONTENT"
    IMAGE_PROHIBITED_INPUT_CONTENT = "IMAGE_PROHIBITED_INPUT_CONTENT"
    INPUT_TEXT_CONTAIN_PROMINENT_PERSON_PROHIBITED = "INPUT_TEXT_CONTAIN_PROMINENT_PERSON_PROHIBITED"
    INPUT_IMAGE_CELEBRITY = "INPUT_IMAGE_CELEBRITY"
    INPUT_IMAGE_PHOTO_REALISTIC_CHILD_PROHIBITED = "INPUT_IMAGE_PHOTO_REALISTIC_CHILD_PROHIBITED"
    INPUT_TEXT_NCII_PROHIBITED = "INPUT_TEXT_NCII_PROHIBITED"
    INPUT_OTHER = "INPUT_OTHER"
    INPUT_IP_PROHIBITED = "INPUT_IP_PROHIBITED"
    BLOCKLIST = "BLOCKLIST"
    UNSAFE_PROMPT_FOR_IMAGE_GENERATION = "UNSAFE_PROMPT_FOR_IMAGE_GENERATION"
    GENERATED_IMAGE_SAFETY = "GENERATED_IMAGE_SAFETY"
    GENERATED_CONTENT_SAFETY = "GENERATED_CONTENT_SAFETY"
    GENERATED_AUDIO_SAFETY = "GENERATED_AUDIO_SAFETY"
    GENERATED_VIDEO_SAFETY = "GENERATED_VIDEO_SAFETY"
    GENERATED_CONTENT_PROHIBITED = "GENERATED_CONTENT_PROHIBITED"
    GENERATED_CONTENT_BLOCKLIST = "GENERATED_CONTENT_BLOCKLIST"
    GENERATED_IMAGE_PROHIBITED = "GENERATED_IMAGE_PROHIBITED"
    GENERATED_IMAGE_CELEBRITY = "GENERATED_IMAGE_CELEBRITY"
    GENERATED_IMAGE_PROMINENT_PEOPLE_DETECTED_BY_REWRITER = (
        "GENERATED_IMAGE_PROMINENT_PEOPLE_DETECTED_BY_REWRITER"
    )
    GENERATED_IMAGE_IDENTIFIABLE_PEOPLE = "GENERATED_IMAGE_IDENTIFIABLE_PEOPLE"
    GENERATED_IMAGE_MINORS = "GENERATED_IMAGE_MINORS"
    OUTPUT_IMAGE_IP_PROHIBITED = "OUTPUT_IMAGE_IP_PROHIBITED"
    GENERATED_OTHER = "GENERATED_OTHER"
    MAX_REGENERATION_REACHED = "MAX_REGENERATION_REACHED"


class VoiceActivityType:
    ACTIVITY_START = "ACTIVITY_START"
    ACTIVITY_END = "ACTIVITY_END"


class VadSignalType:
    SOS = "VAD_SIGNAL_TYPE_SOS"
    EOS = "VAD_SIGNAL_TYPE_EOS"


class TrafficType:
    ON_DEMAND = "ON_DEMAND"
    ON_DEMAND_PRIORITY = "ON_DEMAND_PRIORITY"
    ON_DEMAND_FLEX = "ON_DEMAND_FLEX"
    ON_DEMAND_OFFPEAK = "ON_DEMAND_OFFPEAK"
    PROVISIONED_THROUGHPUT = "PROVISIONED_THROUGHPUT"


class ServiceTier:
    FLEX = "flex"
    STANDARD = "standard"
    PRIORITY = "priority"


class Language:
    PYTHON = "PYTHON"


class Outcome:
    OUTCOME_OK = "OUTCOME_OK"
    OUTCOME_FAILED = "OUTCOME_FAILED"
    OUTCOME_DEADLINE_EXCEEDED = "OUTCOME_DEADLINE_EXCEEDED"


class ToolType:
    GOOGLE_SEARCH_WEB = "GOOGLE_SEARCH_WEB"
    GOOGLE_SEARCH_IMAGE = "GOOGLE_SEARCH_IMAGE"
    URL_CONTEXT = "URL_CONTEXT"
    GOOGLE_MAPS = "GOOGLE_MAPS"
    FILE_SEARCH = "FILE_SEARCH"
    MEDIA_PROCESSING = "MEDIA_PROCESSING"


class VideoContentLayer:
    FRAMES = "FRAMES"
    AUDIO = "AUDIO"
    TRANSCRIPT = "TRANSCRIPT"


class DocumentContentLayer:
    PAGE_IMAGE = "PAGE_IMAGE"
    PAGE_TEXT = "PAGE_TEXT"


class SpreadsheetContentLayer:
    DATA = "DATA"
    FORMULAS = "FORMULAS"
    VISUAL = "VISUAL"


class HarmCategory:
    HARASSMENT = "HARM_CATEGORY_HARASSMENT"
    HATE_SPEECH = "HARM_CATEGORY_HATE_SPEECH"
    SEXUALLY_EXPLICIT = "HARM_CATEGORY_SEXUALLY_EXPLICIT"
    DANGEROUS_CONTENT = "HARM_CATEGORY_DANGEROUS_CONTENT"
    CIVIC_INTEGRITY = "HARM_CATEGORY_CIVIC_INTEGRITY"
    JAILBREAK = "HARM_CATEGORY_JAILBREAK"
    IMAGE_HATE = "HARM_CATEGORY_IMAGE_HATE"
    IMAGE_DANGEROUS_CONTENT = "HARM_CATEGORY_IMAGE_DANGEROUS_CONTENT"
    IMAGE_HARASSMENT = "HARM_CATEGORY_IMAGE_HARASSMENT"
    IMAGE_SEXUALLY_EXPLICIT = "HARM_CATEGORY_IMAGE_SEXUALLY_EXPLICIT"


class HarmBlockThreshold:
    BLOCK_LOW_AND_ABOVE = "BLOCK_LOW_AND_ABOVE"
    BLOCK_MEDIUM_AND_ABOVE = "BLOCK_MEDIUM_AND_ABOVE"
    BLOCK_ONLY_HIGH = "BLOCK_ONLY_HIGH"
    BLOCK_NONE = "BLOCK_NONE"
    OFF = "OFF"


class HarmBlockMethod:
    SEVERITY = "SEVERITY"
    PROBABILITY = "PROBABILITY"


class FeatureSelectionPreference:
    PRIORITIZE_QUALITY = "PRIORITIZE_QUALITY"
    BALANCED = "BALANCED"
    PRIORITIZE_COST = "PRIORITIZE_COST"


class Delivery:
    INLINE = "INLINE"
    URI = "URI"


class AspectRatio:
    ONE_BY_ONE = "ASPECT_RATIO_ONE_BY_ONE"
    TWO_BY_THREE = "ASPECT_RATIO_TWO_BY_THREE"
    THREE_BY_TWO = "ASPECT_RATIO_THREE_BY_TWO"
    THREE_BY_FOUR = "ASPECT_RATIO_THREE_BY_FOUR"
    FOUR_BY_THREE = "ASPECT_RATIO_FOUR_BY_THREE"
    FOUR_BY_FIVE = "ASPECT_RATIO_FOUR_BY_FIVE"
    FIVE_BY_FOUR = "ASPECT_RATIO_FIVE_BY_FOUR"
    NINE_BY_SIXTEEN = "ASPECT_RATIO_NINE_BY_SIXTEEN"
    SIXTEEN_BY_NINE = "ASPECT_RATIO_SIXTEEN_BY_NINE"
    TWENTY_ONE_BY_NINE = "ASPECT_RATIO_TWENTY_ONE_BY_NINE"
    ONE_BY_EIGHT = "ASPECT_RATIO_ONE_BY_EIGHT"
    EIGHT_BY_ONE = "ASPECT_RATIO_EIGHT_BY_ONE"
    ONE_BY_FOUR = "ASPECT_RATIO_ONE_BY_FOUR"
    FOUR_BY_ONE = "ASPECT_RATIO_FOUR_BY_ONE"


class ImageSize:
    FIVE_TWELVE = "IMAGE_SIZE_FIVE_TWELVE"
    ONE_K = "IMAGE_SIZE_ONE_K"
    TWO_K = "IMAGE_SIZE_TWO_K"
    FOUR_K = "IMAGE_SIZE_FOUR_K"


# --------------------------------------------------------------------------- content


@attrs.define
class Blob:
    """Inline bytes with a MIME type (``inlineData``): audio ``audio/pcm;rate=16000``, JPEG frames."""

    data: bytes = b""
    mime_type: str | None = None
    display_name: str | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class FileData:
    file_uri: str | None = None
    mime_type: str | None = None
    display_name: str | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class PartialArg:
    """One piece of a streamed function argument (``FunctionCall.partialArgs``).

    ``json_path`` (RFC 9535, e.g. ``"$.city"``) names the argument; one of the ``*_value`` fields
    carries it (strings may arrive in several pieces: ``will_continue`` is true until the last).
    """

    json_path: str | None = None
    string_value: str | None = None
    number_value: float | None = None
    bool_value: bool | None = None
    null_value: NullValue | None = None
    will_continue: bool | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class FunctionCall:
    """A call the model asks for. With streamed arguments it arrives in several ``toolCall``
    messages with the same ``id``: ``partial_args`` pieces while ``will_continue`` is true, the
    call complete once it is false (or absent)."""

    name: str | None = None
    args: JSONObject | None = None
    id: str | None = None
    partial_args: list[PartialArg] | None = None
    will_continue: bool | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class PartMediaResolution:
    level: str | None = attrs.field(default=None, metadata={"enum": PartMediaResolutionLevel})
    num_tokens: int | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class VideoMetadata:
    start_offset: Duration | None = None
    end_offset: Duration | None = None
    fps: float | None = None
    content_layers: list[str] | None = attrs.field(default=None, metadata={"enum": VideoContentLayer})
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class DocumentMetadata:
    start_page: int | None = None
    end_page: int | None = None
    content_layers: list[str] | None = attrs.field(default=None, metadata={"enum": DocumentContentLayer})
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class SpreadsheetMetadata:
    visible_cells: str | None = None
    sheet_index: int | None = None
    content_layers: list[str] | None = attrs.field(default=None, metadata={"enum": SpreadsheetContentLayer})
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class AudioMetadata:
    start_offset: Duration | None = None
    end_offset: Duration | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class FunctionResponsePart:
    """Media a tool returns with its response (``FunctionResponse.parts``): an image, audio ..."""

    inline_data: Blob | None = None
    file_data: FileData | None = None
    media_processing: str | None = attrs.field(default=None, metadata={"enum": MediaProcessing})
    media_resolution: PartMediaResolution | None = None
    video_metadata: VideoMetadata | None = None
    document_metadata: DocumentMetadata | None = None
    spreadsheet_metadata: SpreadsheetMetadata | None = None
    audio_metadata: AudioMetadata | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class FunctionResponse:
    """The answer to one :class:`FunctionCall`; ``id`` is required on the Gemini API."""

    id: str | None = None
    name: str | None = None
    response: JSONObject | None = None
    will_continue: bool | None = None
    scheduling: str | None = attrs.field(
        default=None, metadata={"enum": Scheduling}
    )  # NON_BLOCKING functions only
    parts: list[FunctionResponsePart] | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class ExecutableCode:
    language: str | None = attrs.field(default=None, metadata={"enum": Language})
    code: str | None = None
    id: str | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class CodeExecutionResult:
    outcome: str | None = attrs.field(default=None, metadata={"enum": Outcome})
    output: str | None = None
    id: str | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class BuiltinToolCall:
    """A call of a server-side tool (``Part.toolCall``), which the client echoes back."""

    id: str | None = None
    tool_type: str | None = attrs.field(default=None, metadata={"enum": ToolType})
    args: JSONObject | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class BuiltinToolResponse:
    """The result of a server-side tool call (``Part.toolResponse``)."""

    id: str | None = None
    tool_type: str | None = attrs.field(default=None, metadata={"enum": ToolType})
    response: JSONObject | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class WordInfo:
    word: str | None = None
    start_offset: Duration | None = None
    end_offset: Duration | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class Transcription:
    """A piece of a transcription: ``text`` increments, ``finished`` on the last one."""

    text: str | None = None
    finished: bool | None = None
    language_code: str | None = None
    speaker_label: str | None = None
    words: list[WordInfo] | None = None
    start_offset: Duration | None = None
    end_offset: Duration | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class SpeechMetadata:
    speaker: str | None = None
    style: str | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


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
    media_resolution: PartMediaResolution | None = None
    video_metadata: VideoMetadata | None = None
    tool_call: BuiltinToolCall | None = None
    tool_response: BuiltinToolResponse | None = None
    part_metadata: JSONObject | None = None
    audio_transcription: Transcription | None = None
    media_processing: str | None = attrs.field(default=None, metadata={"enum": MediaProcessing})
    speech_metadata: SpeechMetadata | None = None
    document_metadata: DocumentMetadata | None = None
    spreadsheet_metadata: SpreadsheetMetadata | None = None
    audio_metadata: AudioMetadata | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class Content:
    parts: list[Part] | None = None
    role: str | None = attrs.field(default=None, metadata={"enum": Role})
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


# --------------------------------------------------------------------------- setup


@attrs.define
class PrebuiltVoiceConfig:
    voice_name: str | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class VoiceConsentSignature:
    signature: str | None = attrs.field(default=None, metadata=SECRET)
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class ReplicatedVoiceConfig:
    """A custom voice from a sample (16-bit 24 kHz WAV), with the speaker's recorded consent or the
    signature the service returned for it (``SetupComplete.voice_consent_signature``)."""

    mime_type: str | None = None
    voice_sample_audio: bytes | None = None
    consent_audio: bytes | None = None
    voice_consent_signature: VoiceConsentSignature | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class VoiceConfig:
    prebuilt_voice_config: PrebuiltVoiceConfig | None = None
    replicated_voice_config: ReplicatedVoiceConfig | None = None
    voice: str | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class SpeechConfig:
    voice_config: VoiceConfig | None = None
    language_code: str | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class ThinkingConfig:
    thinking_budget: int | None = None
    include_thoughts: bool | None = None
    thinking_level: str | None = attrs.field(default=None, metadata={"enum": ThinkingLevel})
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class TranslationConfig:
    """Speech translation: the model answers in ``target_language_code`` (BCP-47).

    Fields in the order the official SDK writes them, so the JSON is byte-for-byte the same."""

    echo_target_language: bool | None = None
    target_language_code: str | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class LanguageAuto:
    """Deprecated by the service (automatic detection is the default); an empty object."""

    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class LanguageHints:
    """Deprecated by the service in favour of ``AudioTranscriptionConfig.language_codes``."""

    language_codes: list[str] | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class AudioTranscriptionConfig:
    """Transcription settings; an empty object turns transcription on with the defaults."""

    language_codes: list[str] | None = None
    custom_vocabulary: list[str] | None = None
    word_timestamp: bool | None = None
    diarization: bool | None = None
    mode: str | None = attrs.field(default=None, metadata={"enum": TranscriptionMode})
    language_auto: LanguageAuto | None = None
    language_hints: LanguageHints | None = None
    adaptation_phrases: list[str] | None = None
    source_text: str | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class ModelConfig:
    """Vertex AI's model selection preference (the SDK's ``model_selection_config``)."""

    feature_selection_preference: str | None = attrs.field(
        default=None, metadata={"enum": FeatureSelectionPreference}
    )
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class AudioResponseFormat:
    bit_rate: int | None = None
    delivery: str | None = attrs.field(default=None, metadata={"enum": Delivery})
    mime_type: str | None = None
    sample_rate: int | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class ImageResponseFormat:
    aspect_ratio: str | None = attrs.field(default=None, metadata={"enum": AspectRatio})
    delivery: str | None = attrs.field(default=None, metadata={"enum": Delivery})
    image_size: str | None = attrs.field(default=None, metadata={"enum": ImageSize})
    mime_type: str | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class TextResponseFormat:
    mime_type: str | None = None
    schema: Any | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class VideoResponseFormat:
    aspect_ratio: str | None = attrs.field(default=None, metadata={"enum": AspectRatio})
    delivery: str | None = attrs.field(default=None, metadata={"enum": Delivery})
    duration: Duration | None = None
    gcs_uri: str | None = None
    resolution: str | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class ResponseFormat:
    audio: AudioResponseFormat | None = None
    image: ImageResponseFormat | None = None
    text: TextResponseFormat | None = None
    video: VideoResponseFormat | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class GenerationConfig:
    response_modalities: list[str] | None = attrs.field(default=None, metadata={"enum": Modality})
    speech_config: SpeechConfig | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: float | None = None
    max_output_tokens: int | None = None
    candidate_count: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    media_resolution: str | None = attrs.field(default=None, metadata={"enum": MediaResolution})
    thinking_config: ThinkingConfig | None = None
    enable_affective_dialog: bool | None = None
    translation_config: TranslationConfig | None = None
    audio_transcription_config: AudioTranscriptionConfig | None = None
    model_config: ModelConfig | None = None
    enable_enhanced_civic_answers: bool | None = None
    response_format: list[ResponseFormat] | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class FunctionDeclaration:
    """``parameters`` is an OpenAPI-style schema (types may be uppercase, as the SDK sends them);
    ``behavior`` NON_BLOCKING lets the model go on talking while the call runs."""

    name: str | None = None
    description: str | None = None
    parameters: JSONObject | None = None
    parameters_json_schema: Any | None = None
    response: JSONObject | None = None
    behavior: str | None = attrs.field(default=None, metadata={"enum": Behavior})
    response_json_schema: Any | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class Tool:
    """Function declarations (typed) and the service's own tools (passed through as JSON)."""

    function_declarations: list[FunctionDeclaration] | None = None
    google_search: JSONObject | None = None
    code_execution: JSONObject | None = None
    url_context: JSONObject | None = None
    retrieval: JSONObject | None = attrs.field(default=None, metadata=SECRET)
    computer_use: JSONObject | None = None
    file_search: JSONObject | None = None
    google_maps: JSONObject | None = attrs.field(default=None, metadata=SECRET)
    enterprise_web_search: JSONObject | None = None
    google_search_retrieval: JSONObject | None = None
    parallel_ai_search: JSONObject | None = attrs.field(default=None, metadata=SECRET)
    mcp_servers: list[JSONObject] | None = attrs.field(default=None, metadata=SECRET)
    exa_ai_search: JSONObject | None = attrs.field(default=None, metadata=SECRET)
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class AutomaticActivityDetection:
    disabled: bool | None = None
    start_of_speech_sensitivity: str | None = attrs.field(default=None, metadata={"enum": StartSensitivity})
    end_of_speech_sensitivity: str | None = attrs.field(default=None, metadata={"enum": EndSensitivity})
    prefix_padding_ms: int | None = None
    silence_duration_ms: int | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class RealtimeInputConfig:
    automatic_activity_detection: AutomaticActivityDetection | None = None
    activity_handling: str | None = attrs.field(default=None, metadata={"enum": ActivityHandling})
    turn_coverage: str | None = attrs.field(default=None, metadata={"enum": TurnCoverage})
    interim_transcript_timestamp_enabled: bool | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class SessionResumptionConfig:
    """``handle`` resumes a previous session; ``transparent`` (Vertex only) asks for message indices."""

    handle: str | None = attrs.field(default=None, metadata=SECRET)
    transparent: bool | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class SlidingWindow:
    target_tokens: Int64 | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class ContextWindowCompressionConfig:
    trigger_tokens: Int64 | None = None
    sliding_window: SlidingWindow | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class ProactivityConfig:
    proactive_audio: bool | None = None
    proactive_video: bool | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class HistoryConfig:
    """``initial_history_in_client_content``: the session starts by taking history through
    ``clientContent`` (for models that otherwise accept clientContent only as the first input)."""

    initial_history_in_client_content: bool | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class CustomizedAvatar:
    image_mime_type: str | None = None
    image_data: bytes | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class AvatarConfig:
    avatar_name: str | None = None
    customized_avatar: CustomizedAvatar | None = None
    audio_bitrate_bps: int | None = None
    video_bitrate_bps: int | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class SafetySetting:
    category: str | None = attrs.field(default=None, metadata={"enum": HarmCategory})
    threshold: str | None = attrs.field(default=None, metadata={"enum": HarmBlockThreshold})
    method: str | None = attrs.field(default=None, metadata={"enum": HarmBlockMethod})
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


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
    history_config: HistoryConfig | None = None
    avatar_config: AvatarConfig | None = None
    safety_settings: list[SafetySetting] | None = None
    labels: StringMap | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


# --------------------------------------------------------------------------- client messages


@attrs.define
class ClientContent:
    """Ordered turns appended to the context; interrupts a generation in progress."""

    turns: list[Content] | None = None
    turn_complete: bool | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class ActivityStart:
    """Manual VAD: the user started speaking (empty object on the wire)."""

    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class ActivityEnd:
    """Manual VAD: the user stopped speaking (empty object on the wire)."""

    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class RealtimeInput:
    """Streaming input; usually exactly one of these fields is set per message."""

    audio: Blob | None = None
    video: Blob | None = None
    text: str | None = None
    activity_start: ActivityStart | None = None
    activity_end: ActivityEnd | None = None
    audio_stream_end: bool | None = None
    media_chunks: list[Blob] | None = None  # deprecated: current models refuse it with 1007
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class ToolResponse:
    function_responses: list[FunctionResponse] | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class ContextUpdateTools:
    tools: list[Tool] | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class ContextUpdate:
    """Changes the system instruction and/or the tools of a running session
    (``{"contextUpdate": {"systemInstruction": ..., "tools": {"tools": [...]}}}``)."""

    system_instruction: Content | None = None
    tools: ContextUpdateTools | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


CLIENT_ONEOF = ("setup", "client_content", "realtime_input", "tool_response", "context_update")


@attrs.define
class ClientMessage:
    """One client frame: exactly one of :data:`CLIENT_ONEOF` set."""

    setup: Setup | None = None
    client_content: ClientContent | None = None
    realtime_input: RealtimeInput | None = None
    tool_response: ToolResponse | None = None
    context_update: ContextUpdate | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)

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
    voice_consent_signature: VoiceConsentSignature | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class ServerContent:
    """Model output and turn signals. One message may carry several of them at once (audio and
    its transcription, or ``turnComplete`` with ``interactionStatus``), and one carrying only
    ``usageMetadata`` may arrive before the first turn on current models."""

    model_turn: Content | None = None
    turn_complete: bool | None = None
    interrupted: bool | None = None
    generation_complete: bool | None = None
    input_transcription: Transcription | None = None
    output_transcription: Transcription | None = None
    grounding_metadata: JSONObject | None = None
    url_context_metadata: JSONObject | None = None
    turn_complete_reason: str | None = attrs.field(default=None, metadata={"enum": TurnCompleteReason})
    waiting_for_input: bool | None = None
    interim_input_transcription: Transcription | None = None
    interaction_status: str | None = attrs.field(default=None, metadata={"enum": InteractionStatus})
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class ToolCall:
    function_calls: list[FunctionCall] | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class ToolCallCancellation:
    ids: list[str] | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class GoAway:
    """The server will close this connection in ``time_left`` seconds."""

    time_left: Duration | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class SessionResumptionUpdate:
    """A new handle (empty and ``resumable=False`` while generating or while a tool call waits)."""

    new_handle: str | None = attrs.field(default=None, metadata=SECRET)
    resumable: bool | None = None
    last_consumed_client_message_index: Int64 | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class VoiceActivity:
    """``type`` is the wire name (``{"voiceActivity": {"type": "ACTIVITY_START"}}``); the SDK calls
    it ``voice_activity_type`` in Python and renames it in ``_VoiceActivity_from_mldev``."""

    type: str | None = attrs.field(default=None, metadata={"enum": VoiceActivityType})
    audio_offset: Duration | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class VoiceActivityDetectionSignal:
    vad_signal_type: str | None = attrs.field(default=None, metadata={"enum": VadSignalType})
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


@attrs.define
class ModalityTokenCount:
    modality: str | None = attrs.field(default=None, metadata={"enum": MediaModality})
    token_count: int | None = None
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


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
    traffic_type: str | None = attrs.field(default=None, metadata={"enum": TrafficType})
    service_tier: str | None = attrs.field(default=None, metadata={"enum": ServiceTier})
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)


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
    extra: JSONObject | None = attrs.field(default=None, metadata=EXTRA_FIELD)

    @property
    def kind(self) -> str:
        """The oneof field that is set, ``"usage_metadata"`` for usage alone, ``""`` for none."""
        for name in SERVER_ONEOF:
            if getattr(self, name) is not None:
                return name
        return "usage_metadata" if self.usage_metadata is not None else ""


def _sparse_repr(self: Any) -> str:
    """``Part(text='hi')``: only the fields that are set (a Part has twenty, most of them None),
    and never the value of a :data:`SECRET` field."""
    shown = ", ".join(
        f"{f.name}={'<redacted>' if f.metadata.get('secret') else repr(value)}"
        for f in attrs.fields(type(self))
        if (value := getattr(self, f.name)) is not None and value != f.default
    )
    return f"{type(self).__name__}({shown})"


for _cls in list(vars().values()):
    if isinstance(_cls, type) and attrs.has(_cls) and _cls.__module__ == __name__:
        _cls.__repr__ = _sparse_repr  # type: ignore[method-assign]
del _cls
