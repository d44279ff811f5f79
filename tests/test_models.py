"""The per-model behaviour table: names to families, the facts the session reads, and the emulator
serving exactly what the table says (one truth for both)."""

from __future__ import annotations

import pytest
import trio

from livemesh import models, wire
from livemesh.emulator import open_emulator
from livemesh.emulator.families import DEFAULT_FAMILIES, family_of
from tests.emulator.helpers import connect, sleep_until_closed


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("gemini-3.8-live", models.GEMINI_3_8_LIVE),
        ("models/gemini-3.8-live", models.GEMINI_3_8_LIVE),
        ("projects/p/locations/us-central1/publishers/google/models/gemini-3.8-live", models.GEMINI_3_8_LIVE),
        ("gemini-3.8-live-002", models.GEMINI_3_8_LIVE),
        ("gemini-3.1-flash-live-preview", models.GEMINI_3_1_LIVE),
        ("gemini-2.5-flash-native-audio-preview-12-2025", models.NATIVE_AUDIO_2_5),
        ("gemini-live-2.5-flash-preview-native-audio-09-2025", models.NATIVE_AUDIO_2_5),
        ("gemini-2.0-flash-live-001", models.HALF_CASCADE),
        ("gemini-3.8-liver", models.HALF_CASCADE),
        ("something-else", models.HALF_CASCADE),
    ],
)
def test_behavior_of(name: str, family: models.ModelBehavior) -> None:
    assert models.behavior_of(name) is family


def test_the_current_models_facts() -> None:
    current = models.GEMINI_3_8_LIVE
    assert current.audio_only and not models.GEMINI_3_1_LIVE.audio_only and not models.HALF_CASCADE.audio_only
    # NON_BLOCKING unless declared BLOCKING; new input cancels a BLOCKING call: input is never held
    assert not current.blocks(None) and not current.blocks("UNSPECIFIED") and current.blocks("BLOCKING")
    assert not current.holds_input_for_blocking_calls
    for older in (models.GEMINI_3_1_LIVE, models.NATIVE_AUDIO_2_5, models.HALF_CASCADE):
        assert older.blocks(None) and not older.blocks("NON_BLOCKING") and older.blocks("SOMETHING_NEW")
        assert older.holds_input_for_blocking_calls
    assert [b.refuse_media_chunks for b in models.MODEL_BEHAVIORS] == [True, True, False, False]
    assert [b.interaction_status for b in models.MODEL_BEHAVIORS] == [True, False, False, False]


def test_the_emulator_reads_the_table() -> None:
    assert [f.behavior for f in DEFAULT_FAMILIES] == list(models.MODEL_BEHAVIORS)
    for family in DEFAULT_FAMILIES:
        for name in family.models:
            assert models.behavior_of(name) is family.behavior
            assert family_of(name) is family
        assert family.default_behavior == family.behavior.default_behavior
        assert family.refuse_media_chunks == family.behavior.refuse_media_chunks
    # a name no family lists gets the family the table finds for it
    assert family_of("gemini-3.8-live-002").behavior is models.GEMINI_3_8_LIVE
    assert family_of("my-native-audio-model").behavior is models.NATIVE_AUDIO_2_5


@pytest.mark.parametrize("behavior", models.MODEL_BEHAVIORS, ids=lambda b: b.name)
async def test_the_emulator_refuses_media_chunks_exactly_where_the_table_says(
    behavior: models.ModelBehavior,
) -> None:
    (family,) = [f for f in DEFAULT_FAMILIES if f.behavior is behavior]
    setup = wire.Setup(
        model=f"models/{family.models[0]}",
        generation_config=wire.GenerationConfig(response_modalities=["AUDIO"]),
    )
    blob = wire.Blob(data=b"\x00\x00" * 160, mime_type="audio/pcm;rate=16000")
    with trio.fail_after(5):
        async with open_emulator() as emu, connect(emu, setup) as c:
            await c.send(wire.ClientMessage(realtime_input=wire.RealtimeInput(media_chunks=[blob])))
            if behavior.refuse_media_chunks:
                assert await sleep_until_closed(c) == (1007, "Request contains an invalid argument.")
            else:
                await c.say("still here")
                _, last = await c.until("turn_complete")  # the connection lives on
                assert last.server_content is not None and last.server_content.turn_complete
