"""The model families the emulator serves: the behaviour table of :mod:`livemesh.models`, plus the
names each family lists and what ``models.list`` says of them.

Every behavioural switch the connection engine reads (``default_behavior``,
``interaction_status``, ``refuse_media_chunks`` ...) comes from the family's
:class:`~livemesh.models.ModelBehavior`, where each one names its public source: the session and
the emulator read one table, so they cannot disagree about a model. Four families are served by
default:

* :data:`GEMINI_3_8_LIVE`: ``gemini-3.8-live``, the stable Live model;
* :data:`GEMINI_3_1_LIVE`: ``gemini-3.1-flash-live-preview``;
* :data:`NATIVE_AUDIO_2_5`: the 2.5 native-audio previews;
* :data:`HALF_CASCADE`: the older text-capable Live models (``gemini-live-2.5-flash-preview``,
  ``gemini-2.0-flash-live-001`` ...).

A model name the families do not list (``EmulatorConfig.live_models`` may add any) gets the
family :func:`livemesh.models.behavior_of` finds for it: :data:`NATIVE_AUDIO_2_5` if it contains
``native-audio``, else :data:`HALF_CASCADE` (the emulator's behaviour before it modelled families).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import attrs

from livemesh import models, wire

__all__ = [
    "DEFAULT_FAMILIES",
    "GEMINI_3_1_LIVE",
    "GEMINI_3_8_LIVE",
    "HALF_CASCADE",
    "NATIVE_AUDIO_2_5",
    "ModelFamily",
    "family_of",
]


def _modalities(family: ModelFamily) -> frozenset[str]:
    return family.behavior.response_modalities


@attrs.frozen(kw_only=True)
class ModelFamily:
    """One family as the emulator serves it: its behaviour, its names, its model-list entry."""

    behavior: models.ModelBehavior
    """How the family behaves (one entry of :data:`livemesh.models.MODEL_BEHAVIORS`)."""
    models: tuple[str, ...]
    """The names served with this behaviour (listed by ``models.list`` in this order)."""
    methods: tuple[str, ...] = ("generateContent", "countTokens", "bidiGenerateContent")
    """``supportedGenerationMethods`` in the model list."""
    response_modalities: frozenset[str] = attrs.field(default=attrs.Factory(_modalities, takes_self=True))
    """What a setup may ask for (anything else is refused with 1007): the behaviour's, unless the
    emulator deliberately answers more (see :data:`NATIVE_AUDIO_2_5`)."""

    @property
    def name(self) -> str:
        return self.behavior.name

    @property
    def native_audio(self) -> bool:
        """Native audio: the larger context window (``limits.context_window_native_audio``)."""
        return self.behavior.native_audio

    @property
    def default_behavior(self) -> str:
        """A function declared without ``behavior`` behaves like this."""
        return self.behavior.default_behavior

    @property
    def interaction_status(self) -> bool:
        """``turnComplete`` carries ``interactionStatus`` (IDLE, or IN_PROGRESS when another model
        turn follows: an unanswered call's result or a queued one will be spoken)."""
        return self.behavior.interaction_status

    @property
    def combined_content(self) -> bool:
        """Audio and its output transcription travel in one ``serverContent``."""
        return self.behavior.combined_content

    @property
    def usage_before_first_turn(self) -> bool:
        """A ``serverContent`` carrying only ``usageMetadata`` precedes a connection's first model turn."""
        return self.behavior.usage_before_first_turn

    @property
    def refuse_media_chunks(self) -> bool:
        """``realtimeInput.mediaChunks`` closes the connection with 1007."""
        return self.behavior.refuse_media_chunks

    @property
    def refuse_thinking_level(self) -> bool:
        """``thinkingConfig.thinkingLevel`` in the setup is refused with 1007."""
        return self.behavior.refuse_thinking_level

    @property
    def refuse_proactive_audio_off(self) -> bool:
        """``proactivity.proactiveAudio: false`` in the setup is refused with 1007."""
        return self.behavior.refuse_proactive_audio_off

    @property
    def refuse_affective_dialog(self) -> bool:
        """``enableAffectiveDialog`` (any value) in the setup is refused with 1007."""
        return self.behavior.refuse_affective_dialog


GEMINI_3_8_LIVE: Final = ModelFamily(
    behavior=models.GEMINI_3_8_LIVE,
    models=("gemini-3.8-live",),
    # Live-only (model page: ai.google.dev/gemini-api/docs/models/gemini-3.8-live).
    methods=("countTokens", "bidiGenerateContent"),
)
"""The stable Live model. ``clientContent`` is allowed for the whole session (model page), as in
every family here; the emulator never limits it to initial history."""

GEMINI_3_1_LIVE: Final = ModelFamily(
    behavior=models.GEMINI_3_1_LIVE,
    models=("gemini-3.1-flash-live-preview",),
)
"""The 3.1 Live preview: 3.x message shapes (audio and transcription in one message, usage before
the first turn, 1007 for ``mediaChunks``) with BLOCKING calls."""

NATIVE_AUDIO_2_5: Final = ModelFamily(
    behavior=models.NATIVE_AUDIO_2_5,
    models=(
        "gemini-2.5-flash-native-audio-preview-09-2025",
        "gemini-2.5-flash-native-audio-preview-12-2025",
        "gemini-2.5-flash-native-audio-latest",
        # Vertex AI names
        "gemini-live-2.5-flash-preview-native-audio",
        "gemini-live-2.5-flash-preview-native-audio-09-2025",
    ),
    # The service answers these models in AUDIO only; the emulator also answers TEXT here, so
    # tests can drive a native-audio session with text turns.
    response_modalities=frozenset({wire.Modality.TEXT, wire.Modality.AUDIO}),
)
"""The 2.5 native-audio previews: the behaviour of the 2025 Live API."""

HALF_CASCADE: Final = ModelFamily(
    behavior=models.HALF_CASCADE,
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

DEFAULT_FAMILIES: Final = (GEMINI_3_8_LIVE, GEMINI_3_1_LIVE, NATIVE_AUDIO_2_5, HALF_CASCADE)


def family_of(model: str, families: Sequence[ModelFamily] = DEFAULT_FAMILIES) -> ModelFamily:
    """The family serving ``model`` (a bare name).

    Args:
        model: The model's bare name.
        families: The families served (``EmulatorConfig.families``).

    Returns:
        The family listing ``model``; else the first family whose behaviour's patterns match it
        (as :func:`livemesh.models.behavior_of` decides), else :data:`HALF_CASCADE`.
    """
    for family in families:
        if model in family.models:
            return family
    behavior = models.behavior_of(model)
    for family in families:
        if family.behavior is behavior:
            return family
    return NATIVE_AUDIO_2_5 if behavior is models.NATIVE_AUDIO_2_5 else HALF_CASCADE
