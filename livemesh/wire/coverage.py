"""How :mod:`livemesh.wire` covers the official SDK's Live types, and what it leaves out on purpose.

Every field of google-genai's ``LiveClientMessage``, ``LiveServerMessage`` and
``LiveConnectConfig``, followed through every type they reach, is modelled by a message class
here under its real JSON name, except what :data:`OMISSIONS` lists. A test walks the SDK's
pydantic models and fails, naming the field, on any field neither modelled nor listed, so a new
SDK release that adds one turns CI red.

This module is data: livemesh never imports google-genai. Names below are the SDK's (Python
class and field names), so a reader can look each one up in ``google.genai.types``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

import attrs

__all__ = [
    "CLASS_NAMES",
    "CONNECT_GENERATION_FIELDS",
    "OMISSIONS",
    "RENAMED_FIELDS",
    "Omission",
    "omission",
]


@attrs.frozen
class Omission:
    """Why an SDK field or class is not a typed field here.

    ``kind`` is ``"omitted"`` (not modelled: a setting naming it is refused with ``reason``) or
    ``"raw"`` (carried verbatim as free-form JSON inside a modelled field, but not typed).
    """

    kind: Literal["omitted", "raw"]
    reason: str


_UNSUPPORTED_IN_LIVE = (
    "not supported in Live sessions: the Live API reference (ai.google.dev/api/live, "
    "BidiGenerateContentSetup.generationConfig) lists responseLogprobs, responseMimeType, logprobs, "
    "responseSchema, stopSequence, routingConfig and audioTimestamp as unsupported, and the SDK's "
    "own LiveClientSetup.generation_config says only a subset of fields is supported"
)
_SERVICE_TOOL = (
    "the configuration of a tool the service runs itself (Tool.googleSearch, Tool.mcpServers, ...): "
    "livemesh never reads it and carries the JSON object verbatim, so every sub-field reaches the "
    "service, including ones newer than the SDK"
)

OMISSIONS: Final[Mapping[str, Omission]] = {
    # ---- omitted: refused when set, with this reason
    "GenerationConfig.response_logprobs": Omission("omitted", _UNSUPPORTED_IN_LIVE),
    "GenerationConfig.response_mime_type": Omission("omitted", _UNSUPPORTED_IN_LIVE),
    "GenerationConfig.logprobs": Omission("omitted", _UNSUPPORTED_IN_LIVE),
    "GenerationConfig.response_schema": Omission("omitted", _UNSUPPORTED_IN_LIVE),
    "GenerationConfig.stop_sequences": Omission("omitted", _UNSUPPORTED_IN_LIVE),
    "GenerationConfig.routing_config": Omission("omitted", _UNSUPPORTED_IN_LIVE),
    "GenerationConfig.audio_timestamp": Omission("omitted", _UNSUPPORTED_IN_LIVE),
    "GenerationConfig.response_json_schema": Omission(
        "omitted",
        "the JSON Schema form of responseSchema, which Live sessions do not support: " + _UNSUPPORTED_IN_LIVE,
    ),
    "SpeechConfig.multi_speaker_voice_config": Omission(
        "omitted",
        "refused for Live sessions by the SDK itself (_transformers.t_live_speech_config: "
        "'multi_speaker_voice_config is not supported in the live API.'); it is a text-to-speech "
        "setting of generateContent",
    ),
    "LiveConnectConfig.http_options": Omission(
        "omitted",
        "the SDK's own HTTP client settings, never sent on the wire; livemesh's are the session's "
        "base_url, api_version and transport options",
    ),
    "File": Omission(
        "omitted",
        "a Files API resource the SDK accepts as a system instruction and turns into a Part with "
        "fileData before sending; it never travels itself (pass a Part with file_data)",
    ),
    # ---- raw: carried verbatim as JSON, not typed
    "Schema": Omission(
        "raw",
        "an OpenAPI schema (FunctionDeclaration.parameters / response): recursive JSON the user "
        "writes; carried verbatim, so every keyword reaches the service, including ones the SDK's "
        "Schema lacks",
    ),
    "GroundingMetadata": Omission(
        "raw",
        "search grounding results (serverContent.groundingMetadata): a deep structure shared with the "
        "REST API that livemesh never reads; kept exactly as the service sent it",
    ),
    "UrlContextMetadata": Omission(
        "raw",
        "URL context results (serverContent.urlContextMetadata): livemesh never reads them; kept "
        "exactly as the service sent them",
    ),
    "Retrieval": Omission("raw", _SERVICE_TOOL),
    "ComputerUse": Omission("raw", _SERVICE_TOOL),
    "FileSearch": Omission("raw", _SERVICE_TOOL),
    "GoogleSearch": Omission("raw", _SERVICE_TOOL),
    "GoogleMaps": Omission("raw", _SERVICE_TOOL),
    "ToolCodeExecution": Omission("raw", _SERVICE_TOOL),
    "EnterpriseWebSearch": Omission("raw", _SERVICE_TOOL),
    "GoogleSearchRetrieval": Omission("raw", _SERVICE_TOOL),
    "ToolParallelAiSearch": Omission("raw", _SERVICE_TOOL),
    "UrlContext": Omission("raw", _SERVICE_TOOL),
    "McpServer": Omission("raw", _SERVICE_TOOL),
    "ToolExaAiSearch": Omission("raw", _SERVICE_TOOL),
}
"""The one table of deliberate omissions: ``"Class.field"`` or ``"Class"`` (the whole class) in
the SDK's names, each with its reason."""

CLASS_NAMES: Final[Mapping[str, str]] = {
    "LiveClientMessage": "ClientMessage",
    "LiveClientSetup": "Setup",
    "LiveClientContent": "ClientContent",
    "LiveClientRealtimeInput": "RealtimeInput",
    "LiveClientToolResponse": "ToolResponse",
    "LiveClientContextUpdate": "ContextUpdate",
    "LiveClientContextUpdateTools": "ContextUpdateTools",
    "LiveServerMessage": "ServerMessage",
    "LiveServerSetupComplete": "SetupComplete",
    "LiveServerContent": "ServerContent",
    "LiveServerToolCall": "ToolCall",
    "LiveServerToolCallCancellation": "ToolCallCancellation",
    "LiveServerGoAway": "GoAway",
    "LiveServerSessionResumptionUpdate": "SessionResumptionUpdate",
    "ToolCall": "BuiltinToolCall",
    "ToolResponse": "BuiltinToolResponse",
    "FunctionResponseBlob": "Blob",
    "FunctionResponseFileData": "FileData",
    "ModelSelectionConfig": "ModelConfig",
}
"""SDK class name -> livemesh class name, where they differ (same fields, same JSON)."""

RENAMED_FIELDS: Final[Mapping[str, str]] = {
    "VoiceActivity.voice_activity_type": "type",
    "GenerationConfig.model_selection_config": "model_config",
}
"""SDK fields whose JSON name on the wire is not their pydantic alias: the SDK renames
``voiceActivity.type`` in ``_VoiceActivity_from_mldev``, and ``model_selection_config`` is
``modelConfig`` in the API (the SDK's Vertex converter writes that)."""

CONNECT_GENERATION_FIELDS: Final = frozenset(
    {
        "response_modalities",
        "temperature",
        "top_p",
        "top_k",
        "max_output_tokens",
        "media_resolution",
        "seed",
        "speech_config",
        "thinking_config",
        "enable_affective_dialog",
        "translation_config",
    }
)
"""``LiveConnectConfig`` fields the SDK moves into ``setup.generationConfig`` (the others go to
``setup`` under their own name)."""


def omission(sdk_class: str, field: str | None = None) -> Omission | None:
    """The table's entry for an SDK field (or for its whole class), if any.

    Args:
        sdk_class: The SDK's class name (``"GenerationConfig"``).
        field: The SDK's field name (``"stop_sequences"``), or ``None`` for the class itself.

    Returns:
        The entry for the field, else the one for its class, else ``None``.
    """
    if field is not None:
        found = OMISSIONS.get(f"{sdk_class}.{field}")
        if found is not None:
            return found
    return OMISSIONS.get(sdk_class)
