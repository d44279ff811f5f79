"""The model families the emulator serves, each with the behaviours that set it apart.

A family is a frozen record of switches the connection engine reads; every switch names its
source (a public docs page, a GitHub thread, or google-genai 3.6.1 itself). Three are
served by default:

* :data:`GEMINI_3_8_LIVE`: ``gemini-3.8-live``, the stable Live model;
* :data:`NATIVE_AUDIO_2_5`: the 2.5 native-audio previews (and ``gemini-3.1-flash-live-preview``,
  which the emulator serves with this family's behaviour);
* :data:`HALF_CASCADE`: the older text-capable Live models (``gemini-live-2.5-flash-preview``,
  ``gemini-2.0-flash-live-001`` ...).

A model name the families do not list (``EmulatorConfig.live_models`` may add any) gets
:data:`NATIVE_AUDIO_2_5` if it contains ``native-audio``, else :data:`HALF_CASCADE`: the
emulator's behaviour before it modelled families.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import attrs

from livemesh import wire

__all__ = [
    "DEFAULT_FAMILIES",
    "GEMINI_3_8_LIVE",
    "HALF_CASCADE",
    "NATIVE_AUDIO_2_5",
    "ModelFamily",
    "family_of",
]


@attrs.frozen(kw_only=True)
class ModelFamily:
    """What one family of Live models does differently (see each field's source)."""

    name: str
    models: tuple[str, ...]
    """The names served with this behaviour (listed by ``models.list`` in this order)."""
    methods: tuple[str, ...] = ("generateContent", "countTokens", "bidiGenerateContent")
    """``supportedGenerationMethods`` in the model list."""
    native_audio: bool = False
    """Native audio: the larger context window (``limits.context_window_native_audio``)."""
    response_modalities: frozenset[str] = frozenset({wire.Modality.TEXT, wire.Modality.AUDIO})
    """What a setup may ask for; anything else is refused with 1007."""
    default_behavior: str = wire.Behavior.BLOCKING
    """A function declared without ``behavior`` behaves like this."""
    interaction_status: bool = False
    """``turnComplete`` carries ``interactionStatus`` (IDLE, or IN_PROGRESS when another model
    turn follows: an unanswered call's result or a queued one will be spoken)."""
    combined_content: bool = False
    """Audio and its output transcription travel in one ``serverContent``."""
    usage_before_first_turn: bool = False
    """A ``serverContent`` carrying only ``usageMetadata`` precedes a connection's first model turn."""
    refuse_media_chunks: bool = False
    """``realtimeInput.mediaChunks`` closes the connection with 1007."""
    refuse_thinking_level: bool = False
    """``thinkingConfig.thinkingLevel`` in the setup is refused with 1007."""
    refuse_proactive_audio_off: bool = False
    """``proactivity.proactiveAudio: false`` in the setup is refused with 1007."""
    refuse_affective_dialog: bool = False
    """``enableAffectiveDialog`` (any value) in the setup is refused with 1007."""


GEMINI_3_8_LIVE: Final = ModelFamily(
    name="gemini-3.8-live",
    models=("gemini-3.8-live",),
    # Live-only (model page: ai.google.dev/gemini-api/docs/models/gemini-3.8-live).
    methods=("countTokens", "bidiGenerateContent"),
    native_audio=True,
    # Model page: AUDIO responses only (text through output transcription).
    response_modalities=frozenset({wire.Modality.AUDIO}),
    # Model page: NON_BLOCKING is the default function behaviour, with working scheduling.
    default_behavior=wire.Behavior.NON_BLOCKING,
    # google-genai 3.6.1: google.genai.types.LiveServerContent.interaction_status, read by
    # google.genai.live._is_interaction_complete: receive() ends a turn on IDLE.
    interaction_status=True,
    # 3.x behaviour carried to 3.8 (model page; livekit/agents#5251): audio and transcription in
    # one message, and an empty serverContent with usage before the first model turn
    # (livekit/agents PR #5238).
    combined_content=True,
    usage_before_first_turn=True,
    # Deprecated mediaChunks refused with 1007 (aicc2025/sip-to-ai#5); thinking_level rejected,
    # proactive_audio false an error, enable_affective_dialog removed (3.8 model page).
    refuse_media_chunks=True,
    refuse_thinking_level=True,
    refuse_proactive_audio_off=True,
    refuse_affective_dialog=True,
)
"""The stable Live model. ``clientContent`` is allowed for the whole session (model page), as in
every family here; the emulator never limits it to initial history."""

NATIVE_AUDIO_2_5: Final = ModelFamily(
    name="gemini-2.5-flash-native-audio",
    models=(
        "gemini-2.5-flash-native-audio-preview-09-2025",
        "gemini-2.5-flash-native-audio-preview-12-2025",
        "gemini-2.5-flash-native-audio-latest",
        "gemini-3.1-flash-live-preview",
        # Vertex AI names
        "gemini-live-2.5-flash-preview-native-audio",
        "gemini-live-2.5-flash-preview-native-audio-09-2025",
    ),
    # Context window 131,072 (model page gemini-2.5-flash-native-audio-preview-12-2025).
    native_audio=True,
    # BLOCKING by default; mediaChunks accepted; affective dialog and proactivity accepted (v1alpha).
    # The service answers these models in AUDIO only; the emulator also answers TEXT here, so tests
    # can drive a native-audio session with text turns.
)
"""The 2.5 native-audio previews: the behaviour of the 2025 Live API."""

HALF_CASCADE: Final = ModelFamily(
    name="gemini-live-2.5-flash",
    models=(
        "gemini-2.0-flash-live-001",
        "gemini-live-2.5-flash-preview",
        "gemini-2.5-flash-live-preview",
        "gemini-2.0-flash-exp",
        # Vertex AI names
        "gemini-live-2.5-flash",
        "gemini-2.0-flash-live-preview-04-09",
    ),
)
"""The older text-capable Live models: TEXT or AUDIO answers, BLOCKING calls, one kind of content
per message."""

DEFAULT_FAMILIES: Final = (GEMINI_3_8_LIVE, NATIVE_AUDIO_2_5, HALF_CASCADE)


def family_of(model: str, families: Sequence[ModelFamily] = DEFAULT_FAMILIES) -> ModelFamily:
    """The family serving ``model`` (a bare name); see the module docstring for names not listed."""
    for family in families:
        if model in family.models:
            return family
    return NATIVE_AUDIO_2_5 if "native-audio" in model else HALF_CASCADE
