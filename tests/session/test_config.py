"""Config: every spelling users bring (seed, google-genai, camelCase JSON), validation at the call,
and the translation to the wire setup message."""

from __future__ import annotations

from typing import Literal

import pytest
from google.genai import types as genai_types

from livemesh import wire
from livemesh.auth import ApiKey, EphemeralToken
from livemesh.errors import ConfigError
from livemesh.session import RetryPolicy, SessionConfig, function_tool
from livemesh.session.tools import declaration_from_function

KEY = ApiKey("k-123")


def test_seed_full_configuration_translates_to_setup() -> None:
    seen: list[object] = []
    config = SessionConfig.from_dict(
        {
            "model": "gemini-2.5-flash-native-audio-preview-12-2025",
            "auth": KEY,
            "api_version": "v1alpha",
            "generation_config": {
                "response_modalities": ["AUDIO"],
                "temperature": 0.7,
                "top_p": 0.95,
                "speech_config": {"voice_config": {"prebuilt_voice_config": {"voice_name": "Kore"}}},
                "thinking_config": {"thinking_budget": 1024, "include_thoughts": True},
            },
            "system_instruction": "You are a helpful voice assistant.",
            "tools": [{"function_declarations": [{"name": "get_weather", "parameters": {"type": "object"}}]}],
            "realtime_input_config": {
                "automatic_activity_detection": {
                    "disabled": False,
                    "start_of_speech_sensitivity": "START_SENSITIVITY_HIGH",
                    "end_of_speech_sensitivity": "END_SENSITIVITY_HIGH",
                }
            },
            "session_resumption": {},
            "resume_handle": "previous-handle",
            "context_window_compression": {
                "sliding_window": {"target_tokens": 16000},
                "trigger_tokens": 24000,
            },
            "input_audio_transcription": {},
            "output_audio_transcription": {},
            "enable_affective_dialog": True,
            "proactivity": {"proactive_audio": True},
            "on_message": seen.append,
            "on_error": seen.append,
        }
    )
    setup = config.setup(KEY, handle="previous-handle")
    assert setup.model == "models/gemini-2.5-flash-native-audio-preview-12-2025"
    gen = setup.generation_config
    assert gen is not None and gen.response_modalities == ["AUDIO"] and gen.temperature == 0.7
    assert gen.thinking_config == wire.ThinkingConfig(thinking_budget=1024, include_thoughts=True)
    assert gen.enable_affective_dialog is True
    assert setup.session_resumption == wire.SessionResumptionConfig(handle="previous-handle")
    assert setup.context_window_compression is not None
    assert setup.context_window_compression.sliding_window == wire.SlidingWindow(
        target_tokens=wire.Int64(16000)
    )
    assert setup.input_audio_transcription == wire.AudioTranscriptionConfig()
    assert setup.proactivity == wire.ProactivityConfig(proactive_audio=True)
    assert setup.system_instruction is not None
    assert config.callbacks.on_message is not None
    encoded = wire.encode_client(wire.ClientMessage(setup=setup))
    assert b'"responseModalities":["AUDIO"]' in encoded


def test_google_genai_live_connect_config_is_accepted() -> None:
    sdk = genai_types.LiveConnectConfig(
        response_modalities=[genai_types.Modality.TEXT],
        temperature=0.2,
        system_instruction="Be brief.",
        session_resumption=genai_types.SessionResumptionConfig(),
        input_audio_transcription=genai_types.AudioTranscriptionConfig(),
        realtime_input_config=genai_types.RealtimeInputConfig(
            automatic_activity_detection=genai_types.AutomaticActivityDetection(disabled=True)
        ),
    )
    config = SessionConfig.from_connect_config("gemini-2.0-flash-live-001", sdk, auth=KEY)
    setup = config.setup(KEY, handle=None)
    assert setup.generation_config == wire.GenerationConfig(response_modalities=["TEXT"], temperature=0.2)
    assert setup.realtime_input_config is not None
    assert setup.realtime_input_config.automatic_activity_detection == wire.AutomaticActivityDetection(
        disabled=True
    )
    assert setup.input_audio_transcription is not None


def test_camel_case_json_is_accepted() -> None:
    config = SessionConfig.from_dict(
        {"model": "m", "generationConfig": {"responseModalities": ["TEXT"]}, "sessionResumption": {}}
    )
    assert config.response_modality == "TEXT"


@pytest.mark.parametrize(
    "options",
    [
        {"model": "m", "response_modalities": ["TEXT", "AUDIO"]},
        {"model": "m", "response_modalities": ["VIDEO"]},
        {"model": "m", "response_modalities": "TEXT"},
        {"model": "m", "temperature": "hot"},
        {"model": "m", "generation_config": 3},
        {"model": ""},
        {"model": "has space"},
        {"model": "m", "no_such_option": 1},
        {"model": "m", "tools": [42]},
        {"model": "m", "tools": [{"function_declarations": [{"description": "no name"}]}]},
        {"model": "m", "on_message": "not callable"},
        {"model": "m", "outbox_size": 0},
        {"model": "m", "tool_timeout": -1},
        {"model": "m", "enable_affective_dialog": "yes"},
        {"model": "m", "project_id": "p"},
    ],
)
def test_bad_options_are_config_errors(options: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        SessionConfig.from_dict(options)


def test_transparent_needs_vertex() -> None:
    config = SessionConfig(model="m", auth=KEY, session_resumption={"transparent": True})
    with pytest.raises(ConfigError, match="Vertex"):
        config.resolved_auth()


def test_resumption_is_on_by_default_and_can_be_turned_off() -> None:
    assert SessionConfig(model="m").session_resumption == wire.SessionResumptionConfig()
    off = SessionConfig(model="m", session_resumption=False)
    assert off.setup(KEY, handle=None).session_resumption is None


def test_secrets_stay_out_of_reprs() -> None:
    config = SessionConfig(model="m", auth=ApiKey("sk-very-secret"), resume_handle="h-secretish")
    token = SessionConfig(model="m", auth=EphemeralToken("auth_tokens/abc-secret"))
    assert "sk-very-secret" not in repr(config)
    assert "h-secretish" not in repr(config)
    assert "abc-secret" not in repr(token)


def test_retry_policy_backoff_is_bounded_and_jittered() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0, jitter=0.5)
    assert policy.delay(0, lambda: 0.0) == pytest.approx(0.25)
    assert policy.delay(0, lambda: 0.999) == pytest.approx(0.25 + 0.25 * 0.999)
    assert policy.delay(10, lambda: 1.0) == pytest.approx(4.0)


def test_declarations_from_plain_functions() -> None:
    def book(
        city: str, nights: int, kind: Literal["hotel", "hostel"] = "hotel", tags: list[str] | None = None
    ) -> dict:
        """Book a room.

        Args:
            city: Where to stay.
            nights: How many nights.
        """
        return {}

    decl = declaration_from_function(book)
    assert decl.name == "book" and decl.description == "Book a room."
    assert decl.parameters == {
        "type": "OBJECT",
        "properties": {
            "city": {"type": "STRING", "description": "Where to stay."},
            "nights": {"type": "INTEGER", "description": "How many nights."},
            "kind": {"type": "STRING", "enum": ["hotel", "hostel"]},
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "nullable": True},
        },
        "required": ["city", "nights"],
    }
    explicit = function_tool(book, name="reserve", behavior=wire.Behavior.NON_BLOCKING, timeout=3)
    assert explicit.declaration.name == "reserve" and explicit.non_blocking and explicit.timeout == 3

    def variadic(*args: int) -> None: ...

    with pytest.raises(ConfigError):
        declaration_from_function(variadic)
    with pytest.raises(ConfigError, match="unique"):
        SessionConfig(model="m", tools=[book, {"name": "book"}])
