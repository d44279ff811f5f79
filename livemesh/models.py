"""How each family of Live models behaves, in one table the session and the emulator both read.

The Live API's models differ in ways a client has to know before the first message: whether a
function declared without ``behavior`` blocks the conversation, whether new input cancels a
BLOCKING call, whether answers can be TEXT, whether ``turnComplete`` carries
``interactionStatus``, whether the deprecated ``realtimeInput.mediaChunks`` is refused. Each
fact is a field of :class:`ModelBehavior` with its public source beside it; :func:`behavior_of`
finds the entry for a model name (first matching pattern wins, so the catch-all comes last).

What the table deliberately does not hold:

* Streamed function arguments (``FunctionCall.partialArgs``): google-genai 3.6.1 documents them
  as requested per request (``FunctionCallingConfig.stream_function_call_arguments``, "not
  supported in Gemini API"), not as a trait of a model, so a client assembles pieces whenever
  they arrive (:mod:`livemesh.wire.streamed`).
* Message shapes a client can read without knowing the model (several parts in one
  ``serverContent``, a usage-only ``serverContent``): listed here for the emulator, which must
  produce them; the session handles every shape on every model.

This module is pure data: it imports nothing from the session, the pool or the emulator.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Final

import attrs

from livemesh.wire import messages as m

__all__ = [
    "GEMINI_3_1_LIVE",
    "GEMINI_3_8_LIVE",
    "HALF_CASCADE",
    "MODEL_BEHAVIORS",
    "NATIVE_AUDIO_2_5",
    "ModelBehavior",
    "bare_model_name",
    "behavior_of",
    "refused_settings",
]


@attrs.frozen(kw_only=True)
class ModelBehavior:
    """What one family of Live models does differently (each field's source is in the entries
    below; the defaults are the 2025 Live API's behaviour)."""

    name: str
    """The family's name (for logs and reprs)."""
    patterns: tuple[str, ...]
    """Shell-style patterns (:mod:`fnmatch`, case-sensitive) on the bare model name."""
    native_audio: bool = False
    """A native-audio model: the larger context window."""
    response_modalities: frozenset[str] = frozenset({m.Modality.TEXT, m.Modality.AUDIO})
    """The response modalities the model answers in (a setup asking for another is refused)."""
    default_behavior: str = m.Behavior.BLOCKING
    """How a function declared without ``behavior`` is called: BLOCKING or NON_BLOCKING."""
    input_cancels_blocking_call: bool = False
    """New input while a BLOCKING call runs cancels the call (instead of waiting for its answer):
    a client must not hold the user's input until the call is answered."""
    interaction_status: bool = False
    """``turnComplete`` carries ``interactionStatus``: IDLE ends an interaction, IN_PROGRESS means
    another model turn follows."""
    combined_content: bool = False
    """One ``serverContent`` may carry several parts: audio with its transcription."""
    usage_before_first_turn: bool = False
    """A ``serverContent`` carrying only ``usageMetadata`` precedes the first model turn."""
    refuse_media_chunks: bool = False
    """``realtimeInput.mediaChunks`` closes the connection with 1007 (send ``audio``/``video``)."""
    refuse_thinking_level: bool = False
    """``thinkingConfig.thinkingLevel`` in the setup is refused with 1007."""
    refuse_proactive_audio_off: bool = False
    """``proactivity.proactiveAudio: false`` in the setup is refused with 1007."""
    refuse_affective_dialog: bool = False
    """``enableAffectiveDialog`` (any value) in the setup is refused with 1007."""
    refuse_other_modalities: bool = False
    """A setup asking for a response modality outside :attr:`response_modalities` is refused with
    1007, and livemesh refuses it when the session is configured (see :func:`refused_settings`)."""

    @property
    def audio_only(self) -> bool:
        """The model answers in AUDIO only (its text comes through output transcription)."""
        return self.response_modalities == frozenset({m.Modality.AUDIO})

    @property
    def holds_input_for_blocking_calls(self) -> bool:
        """Whether a client should hold realtime input while a BLOCKING call waits for its answer.

        Older models end a session that streams media during a BLOCKING call (a 1008 reported by
        users); on models where new input cancels the call instead, holding it would keep the
        user from interrupting.
        """
        return not self.input_cancels_blocking_call

    def blocks(self, declared: str | None) -> bool:
        """Whether a call of a function declared with ``declared`` behaviour blocks the turn.

        Args:
            declared: The declaration's ``behavior`` (``None`` or ``UNSPECIFIED`` when not set;
                an unknown value is taken as not set).

        Returns:
            True for a BLOCKING call (the model waits for its answer).
        """
        if declared not in (m.Behavior.BLOCKING, m.Behavior.NON_BLOCKING):
            declared = self.default_behavior
        return declared == m.Behavior.BLOCKING

    def matches(self, model: str) -> bool:
        """Whether ``model`` (a bare name or a full resource name) belongs to this family.

        Args:
            model: ``gemini-3.8-live``, ``models/gemini-3.8-live`` or a Vertex AI resource name.

        Returns:
            True if one of :attr:`patterns` matches its bare name.
        """
        name = bare_model_name(model)
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.patterns)


GEMINI_3_8_LIVE: Final = ModelBehavior(
    name="gemini-3.8-live",
    patterns=("gemini-3.8-live", "gemini-3.8-live-*"),
    native_audio=True,
    # Model page (ai.google.dev/gemini-api/docs/models/gemini-3.8-live): AUDIO responses only
    # (text through output transcription); NON_BLOCKING is the default function behaviour.
    response_modalities=frozenset({m.Modality.AUDIO}),
    default_behavior=m.Behavior.NON_BLOCKING,
    # Vertex AI's guide "Migrate from Gemini 2.5 Flash Live API native audio to Gemini 3.8 Live"
    # (models/live-api/migrate-from-gemini-2-5-to-gemini-3-8-live): a call is BLOCKING only when
    # declared so, and new input received while it runs cancels it.
    input_cancels_blocking_call=True,
    # google-genai 3.6.1: LiveServerContent.interaction_status, read by live.py's
    # _is_interaction_complete (receive() ends an interaction on IDLE).
    interaction_status=True,
    # 3.x behaviour kept by 3.8 (model page; livekit/agents#5251 and PR #5238 on GitHub): audio and
    # transcription in one message; a usage-only serverContent before the first model turn.
    combined_content=True,
    usage_before_first_turn=True,
    # Deprecated mediaChunks refused with 1007 (aicc2025/sip-to-ai#5 on GitHub); thinking_level
    # rejected, proactive_audio false an error, enable_affective_dialog removed (model page).
    refuse_media_chunks=True,
    refuse_thinking_level=True,
    refuse_proactive_audio_off=True,
    refuse_affective_dialog=True,
    refuse_other_modalities=True,
)
"""The stable Live model."""

GEMINI_3_1_LIVE: Final = ModelBehavior(
    name="gemini-3.1-flash-live",
    patterns=("gemini-3.1-flash-live*",),
    native_audio=True,
    # Model page (ai.google.dev/gemini-api/docs/models/gemini-3.1-flash-live-preview, migration
    # section): one server event may carry several content parts (audio and transcription);
    # asynchronous (NON_BLOCKING) calls are not supported yet, calls are synchronous. Output is
    # listed as text and audio.
    combined_content=True,
    # livekit/agents#5251 (and #5234) on GitHub: an empty serverContent with only usage precedes
    # the first generation.
    usage_before_first_turn=True,
    # livekit/agents-js#1186 on GitHub: audio must go as realtimeInput.audio, mediaChunks is refused.
    refuse_media_chunks=True,
)
"""The 3.1 Live preview: 3.x message shapes, BLOCKING calls."""

NATIVE_AUDIO_2_5: Final = ModelBehavior(
    name="gemini-2.5-flash-native-audio",
    patterns=("*native-audio*",),
    native_audio=True,
    # Model page (ai.google.dev/gemini-api/docs/models/gemini-2.5-flash-native-audio-preview-12-2025):
    # AUDIO output only. BLOCKING by default; mediaChunks still accepted (deprecated); affective
    # dialog and proactivity accepted (v1alpha).
    response_modalities=frozenset({m.Modality.AUDIO}),
)
"""The 2.5 native-audio previews: the behaviour of the 2025 Live API, answering in audio."""

HALF_CASCADE: Final = ModelBehavior(name="gemini-live-2.5-flash", patterns=("*",))
"""The older text-capable Live models (``gemini-live-2.5-flash-preview``,
``gemini-2.0-flash-live-001`` ...), and any name the table does not know: TEXT or AUDIO answers,
BLOCKING calls, one kind of content per message (the Live API as documented in 2025)."""

MODEL_BEHAVIORS: Final[tuple[ModelBehavior, ...]] = (
    GEMINI_3_8_LIVE,
    GEMINI_3_1_LIVE,
    NATIVE_AUDIO_2_5,
    HALF_CASCADE,
)
"""Every family, most specific first; the last entry matches every name."""


def bare_model_name(model: str) -> str:
    """The model's own name, without ``models/`` or a Vertex AI resource path.

    Args:
        model: ``gemini-3.8-live``, ``models/gemini-3.8-live`` or
            ``projects/p/locations/l/publishers/google/models/gemini-3.8-live``.

    Returns:
        ``gemini-3.8-live``.
    """
    return model.rsplit("/", 1)[-1]


def behavior_of(model: str, table: Sequence[ModelBehavior] = MODEL_BEHAVIORS) -> ModelBehavior:
    """The behaviour of ``model``: the first entry of ``table`` with a matching pattern.

    Args:
        model: A model name in any of the forms :func:`bare_model_name` takes.
        table: The families to look in, most specific first.

    Returns:
        The matching entry; :data:`HALF_CASCADE` (the 2025 behaviour) if none matches.
    """
    for behavior in table:
        if behavior.matches(model):
            return behavior
    return HALF_CASCADE


def refused_settings(behavior: ModelBehavior, setup: m.Setup) -> list[str]:
    """The settings of ``setup`` that ``behavior``'s models refuse with 1007, each as a sentence.

    The client uses it to refuse such a configuration before anything is sent (a
    :class:`~livemesh.errors.ConfigError` naming each setting), the emulator to close with the
    service's 1007: one list of refusals for both.

    Args:
        behavior: The model's entry in the table (:func:`behavior_of`).
        setup: The setup message as it would be sent.

    Returns:
        One sentence per refused setting (empty when the model accepts the setup).
    """
    refused: list[str] = []
    generation = setup.generation_config
    if behavior.refuse_other_modalities:
        allowed = sorted(behavior.response_modalities)
        for modality in (generation.response_modalities if generation else None) or []:
            if modality.upper() not in behavior.response_modalities:
                refused.append(
                    f"response_modalities {modality!r}: {behavior.name} answers in {allowed} only "
                    "(read its text through output_audio_transcription)"
                )
    thinking = generation.thinking_config if generation else None
    if behavior.refuse_thinking_level and thinking is not None and thinking.thinking_level is not None:
        refused.append(f"thinking_level: {behavior.name} refuses it (set thinking_budget instead)")
    if behavior.refuse_affective_dialog and generation and generation.enable_affective_dialog is not None:
        refused.append(f"enable_affective_dialog: {behavior.name} no longer has the setting")
    proactivity = setup.proactivity
    if behavior.refuse_proactive_audio_off and proactivity and proactivity.proactive_audio is False:
        refused.append(f"proactive_audio=False: {behavior.name} refuses it (leave proactivity unset)")
    return refused
