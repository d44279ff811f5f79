"""Config: every spelling users bring (seed, google-genai, camelCase JSON), validation at the call,
and the translation to the wire setup message."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import orjson
import pytest
from google import genai
from google.genai import types as genai_types

from livemesh import wire
from livemesh.auth import ApiKey, EphemeralToken
from livemesh.errors import ConfigError
from livemesh.session import RetryPolicy, SessionConfig, function_tool
from livemesh.session.tools import declaration_from_function
from tests.wire.sdk_strategies import sdk_setup_frame

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
        {"model": "m", "response_modalities": ["SMELL"]},
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


# ----------------------------------------------------------------------------- no silent drops


def _sdk_setup(config: genai_types.LiveConnectConfig, model: str = "models/m") -> bytes:
    """The setup frame google-genai's connect() sends for this config."""
    return json.dumps(sdk_setup_frame(genai.Client(api_key="k")._api_client, model, config)).encode()


def _ours(config: SessionConfig) -> bytes:
    return wire.encode_client(wire.ClientMessage(setup=config.setup(KEY, handle=None)))


@pytest.mark.parametrize(
    ("options", "sdk"),
    [
        (
            {"generation_config": {"thinking_config": {"thinking_level": "LOW"}}},
            genai_types.LiveConnectConfig(thinking_config=genai_types.ThinkingConfig(thinking_level="LOW")),
        ),
        (
            {"input_audio_transcription": {"language_codes": ["en-US"]}},
            genai_types.LiveConnectConfig(
                input_audio_transcription=genai_types.AudioTranscriptionConfig(language_codes=["en-US"])
            ),
        ),
        (
            {"generation_config": {"translation_config": {"target_language_code": "fr"}}},
            genai_types.LiveConnectConfig(
                translation_config=genai_types.TranslationConfig(target_language_code="fr")
            ),
        ),
    ],
    ids=["thinking_level", "language_codes", "translation_config"],
)
def test_settings_that_were_dropped_reach_the_wire_as_the_sdk_sends_them(
    options: dict[str, Any], sdk: genai_types.LiveConnectConfig
) -> None:
    config = SessionConfig(model="m", session_resumption=False, **options)
    assert wire.decode_client(_ours(config)) == wire.decode_client(_sdk_setup(sdk))
    # and the same through the SDK's own object
    assert _ours(SessionConfig.from_connect_config("m", sdk, session_resumption=False)) == _ours(config)


def test_a_translation_setting_reaches_the_wire_byte_for_byte_as_the_sdk_sends_it() -> None:
    sdk = genai_types.LiveConnectConfig(
        response_modalities=["AUDIO"],
        translation_config=genai_types.TranslationConfig(
            target_language_code="fr", echo_target_language=True
        ),
    )
    sdk_frame = json.loads(_sdk_setup(sdk))
    expected = json.dumps(sdk_frame["setup"]["generationConfig"]["translationConfig"], separators=(",", ":"))
    for config in (
        SessionConfig.from_connect_config("m", sdk),
        SessionConfig(
            model="m",
            generation_config={
                "response_modalities": ["AUDIO"],
                "translation_config": {"target_language_code": "fr", "echo_target_language": True},
            },
        ),
        SessionConfig.from_dict(
            {"model": "m", "translationConfig": {"echoTargetLanguage": True, "targetLanguageCode": "fr"}}
        ),
    ):
        assert b'"translationConfig":' + expected.encode() in _ours(config)


@pytest.mark.parametrize(
    "value",
    [
        {"initial_history_in_client_content": True},
        {"initialHistoryInClientContent": True},
        wire.HistoryConfig(initial_history_in_client_content=True),
        genai_types.HistoryConfig(initial_history_in_client_content=True),
    ],
    ids=["snake", "camel", "wire", "sdk"],
)
def test_history_config_works_in_every_spelling(value: object) -> None:
    config = SessionConfig(model="m", history_config=value)
    assert config.setup(KEY, handle=None).history_config == wire.HistoryConfig(True)
    assert SessionConfig.from_dict({"model": "m", "historyConfig": value}) == config
    sdk = genai_types.LiveConnectConfig(history_config={"initial_history_in_client_content": True})
    assert wire.decode_client(
        _ours(SessionConfig.from_connect_config("m", sdk, session_resumption=False))
    ) == (wire.decode_client(_sdk_setup(sdk)))


UNKNOWN_KEYS = [
    (
        {"generation_config": {"thinking_config": {"thinking_levle": "LOW"}}},
        "unknown key 'generation_config.thinking_config.thinking_levle' (did you mean 'thinking_level'?)",
    ),
    (
        {"generationConfig": {"thinkingConfig": {"thinkingLevle": "LOW"}}},
        "unknown key 'generation_config.thinkingConfig.thinkingLevle' (did you mean 'thinkingLevel'?)",
    ),
    (
        {"input_audio_transcription": {"language_code": ["en-US"]}},
        "unknown key 'audio_transcription.language_code' (did you mean 'language_codes'?)",
    ),
    (
        {"realtime_input_config": {"automatic_activity_detection": {"silence_duration": 300}}},
        "unknown key 'realtime_input_config.automatic_activity_detection.silence_duration' "
        "(did you mean 'silence_duration_ms'?)",
    ),
    (
        {"tools": [{"function_declarations": [{"name": "f", "behaviour": "NON_BLOCKING"}]}]},
        "unknown key 'tools[0].function_declarations[0].behaviour' (did you mean 'behavior'?)",
    ),
    (
        {"system_instruction": {"parts": [{"txt": "hi"}]}},
        "unknown key 'system_instruction.parts[0].txt' (did you mean 'text'?)",
    ),
    (
        {"translation_cfg": {}},
        "unknown session option 'translation_cfg' (did you mean 'translation_config'?)",
    ),
    ({"histroy_config": {}}, "unknown session option 'histroy_config' (did you mean 'history_config'?)"),
    (
        {"speech_config": {"voice_config": {"voice_nam": "Kore"}}},
        "unknown key 'speech_config.voice_config.voice_nam'",
    ),
    ({"zzz": 1}, "unknown session option 'zzz'"),
]


@pytest.mark.parametrize(("options", "message"), UNKNOWN_KEYS)
def test_unknown_keys_at_any_depth_in_any_spelling_are_named(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        SessionConfig.from_dict({"model": "m", **options})


def test_unknown_keyword_options_are_config_errors_not_type_errors() -> None:
    with pytest.raises(ConfigError, match=re.escape("unknown session option 'histroy_config' (did you mean")):
        SessionConfig(model="m", histroy_config={})  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="generation_cfg"):
        SessionConfig(model="m").evolve(generation_cfg={})
    with pytest.raises(ConfigError, match="unknown session option"):
        SessionConfig.build({"model": "m"}, no_such=1)


def test_settings_the_live_api_does_not_take_are_refused_with_the_reason() -> None:
    with pytest.raises(
        ConfigError, match=r"generation_config\.stop_sequences is not sent: not supported in Live"
    ):
        SessionConfig(model="m", generation_config={"stop_sequences": ["x"]})
    with pytest.raises(
        ConfigError, match=r"multi_speaker_voice_config is not sent: refused for Live sessions"
    ):
        SessionConfig(model="m", generation_config={"speech_config": {"multi_speaker_voice_config": {}}})


def test_the_sdk_name_of_a_renamed_field_is_accepted() -> None:
    config = SessionConfig(
        model="m", generation_config={"model_selection_config": {"feature_selection_preference": "BALANCED"}}
    )
    setup = orjson.loads(_ours(config))["setup"]
    assert setup["generationConfig"] == {"modelConfig": {"featureSelectionPreference": "BALANCED"}}


def test_http_options_base_url_and_version_are_used_and_the_rest_refused() -> None:
    sdk = genai_types.LiveConnectConfig(
        http_options={"base_url": "ws://127.0.0.1:9", "api_version": "v1alpha"}
    )
    config = SessionConfig.from_connect_config("m", sdk)
    assert (config.base_url, config.api_version) == ("ws://127.0.0.1:9", "v1alpha")
    with pytest.raises(ConfigError, match=r"http_options\.headers is not supported"):
        SessionConfig.from_dict({"model": "m", "http_options": {"headers": {"x": "y"}}})
    with pytest.raises(ConfigError, match="contradicts"):
        SessionConfig.from_dict({"model": "m", "base_url": "ws://a", "http_options": {"base_url": "ws://b"}})


def test_every_live_connect_config_field_is_accepted() -> None:
    """from_connect_config takes every LiveConnectConfig field but the ones the table omits."""
    sdk = genai_types.LiveConnectConfig(
        generation_config=genai_types.GenerationConfig(candidate_count=1, enable_enhanced_civic_answers=True),
        response_modalities=["AUDIO"],
        temperature=0.5,
        top_p=0.9,
        top_k=40,
        max_output_tokens=100,
        media_resolution="MEDIA_RESOLUTION_LOW",
        seed=7,
        speech_config=genai_types.SpeechConfig(
            voice_config=genai_types.VoiceConfig(
                replicated_voice_config=genai_types.ReplicatedVoiceConfig(
                    mime_type="audio/wav", voice_sample_audio=b"\xfb\xff"
                )
            ),
            language_code="fr-FR",
        ),
        thinking_config=genai_types.ThinkingConfig(thinking_budget=0),
        enable_affective_dialog=False,
        system_instruction="Be brief.",
        tools=[genai_types.Tool(google_search=genai_types.GoogleSearch())],
        session_resumption=genai_types.SessionResumptionConfig(),
        input_audio_transcription=genai_types.AudioTranscriptionConfig(diarization=True, mode="SMART"),
        output_audio_transcription=genai_types.AudioTranscriptionConfig(word_timestamp=True),
        realtime_input_config=genai_types.RealtimeInputConfig(
            turn_coverage="TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO",
            interim_transcript_timestamp_enabled=True,
        ),
        context_window_compression=genai_types.ContextWindowCompressionConfig(trigger_tokens=1000),
        proactivity=genai_types.ProactivityConfig(proactive_audio=True, proactive_video=True),
        history_config=genai_types.HistoryConfig(initial_history_in_client_content=True),
        avatar_config=genai_types.AvatarConfig(avatar_name="a", video_bitrate_bps=1),
        safety_settings=[
            genai_types.SafetySetting(category="HARM_CATEGORY_HARASSMENT", threshold="BLOCK_ONLY_HIGH")
        ],
        translation_config=genai_types.TranslationConfig(target_language_code="fr"),
        labels={"team": "voice"},
    )
    set_fields = {
        name for name in genai_types.LiveConnectConfig.model_fields if getattr(sdk, name) is not None
    }
    omitted = {
        key.partition(".")[2] for key in wire.coverage.OMISSIONS if key.startswith("LiveConnectConfig.")
    }
    vertex_only = {"explicit_vad_signal"}  # the SDK refuses it on the Gemini API
    assert set_fields | omitted | vertex_only == set(genai_types.LiveConnectConfig.model_fields)
    config = SessionConfig.from_connect_config("m", sdk, session_resumption=True)
    assert wire.decode_client(_ours(config)) == wire.decode_client(_sdk_setup(sdk))


# ----------------------------------------------------------------------------- the escape hatch


def test_extra_setup_is_merged_verbatim_into_the_setup() -> None:
    config = SessionConfig(
        model="m",
        generation_config={"temperature": 0.5},
        extra_setup={"generation_config": {"brandNewKnob": {"level": 2}}, "brandNewSetting": [1, 2]},
    )
    setup = orjson.loads(_ours(config))["setup"]
    assert setup["generationConfig"] == {"temperature": 0.5, "brandNewKnob": {"level": 2}}
    assert setup["brandNewSetting"] == [1, 2]


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"generationConfig": {"temperature": 0.2}}, "extra_setup.generationConfig.temperature is a setting"),
        ({"model": "other"}, "extra_setup.model is a setting livemesh knows"),
        ({"generationConfig": 3}, "must be an object"),
        ({"x": object()}, "extra_setup must be JSON"),
        ([1], "must be a dict"),
    ],
)
def test_extra_setup_refuses_what_livemesh_knows_and_what_json_cannot_carry(
    extra: object, match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        SessionConfig(model="m", extra_setup=extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"response_modalities": ["TEXT"]}, "response_modalities 'TEXT'"),
        ({"generation_config": {"thinking_config": {"thinking_level": "LOW"}}}, "thinking_level"),
        ({"thinking": {"thinking_level": "HIGH"}}, "thinking_level"),
        ({"enable_affective_dialog": True}, "enable_affective_dialog"),
        ({"proactivity": {"proactive_audio": False}}, "proactive_audio=False"),
    ],
)
def test_a_setting_the_model_refuses_fails_at_the_call(options: dict[str, object], named: str) -> None:
    # gemini-3.8-live closes such a setup with 1007; livemesh says which setting, before any dial.
    with pytest.raises(ConfigError, match=r"gemini-3\.8-live refuses this setup") as info:
        SessionConfig.build(model="gemini-3.8-live", auth="k", **options)
    assert named in str(info.value)
    # The same settings are fine for a model that takes them.
    SessionConfig.build(model="gemini-live-2.5-flash-preview", auth="k", **options)


def test_the_stable_model_accepts_what_it_supports() -> None:
    SessionConfig.build(
        model="gemini-3.8-live",
        auth="k",
        response_modalities=["AUDIO"],
        output_audio_transcription={},
        thinking={"thinking_budget": 128},
        proactivity={"proactive_audio": True},
    )
