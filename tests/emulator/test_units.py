"""Sans-IO parts of the emulator: scripted model words, VAD, routing, context snapshots."""

from __future__ import annotations

import array
import math

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from livemesh import wire
from livemesh.emulator import EmulatorConfig, FaultConfig, model
from livemesh.emulator.context import Context
from livemesh.emulator.routing import live_route
from livemesh.emulator.vad import EnergyVad, VadEvent, pcm_rate
from livemesh.errors import ConfigError
from livemesh.limits import ServiceLimits


def tone(ms: int, amplitude: int, rate: int = 16_000) -> bytes:
    n = rate * ms // 1000
    return array.array("h", (int(amplitude * math.sin(i / 3)) for i in range(n))).tobytes()


def test_classify_words() -> None:
    declared = frozenset({"f"})
    assert model.classify(" Recall ", declared) == model.Recall()
    assert model.classify("STATS", declared) == model.Stats()
    assert model.classify('call f {"a": 1}', declared) == model.Call("f", {"a": 1})
    assert model.classify("call f not json", declared) == model.Call("f", {"input": "not json"})
    assert model.classify("call g", declared) == model.Say("call g")
    assert model.classify("recall me", declared) == model.Say("recall me")


def test_split_chunks_rejoins_exactly() -> None:
    for text in ["", "a", "You said: hello", "x" * 101]:
        pieces = model.split_chunks(text, 3)
        assert "".join(pieces) == text
        assert len(pieces) == min(3, max(1, len(text)))


def test_tone_is_whole_samples() -> None:
    audio = model.tone(1.5)
    assert len(audio) == 2 * 36_000
    assert [len(p) % 2 for p in model.split_bytes(audio, 7)] == [0] * 7
    assert b"".join(model.split_bytes(audio, 7)) == audio


def test_vad_in_audio_time() -> None:
    vad = EnergyVad()
    assert vad.feed(tone(200, 100), 16_000) == []  # quiet: below the threshold
    events = vad.feed(tone(300, 8000), 16_000)
    assert [e.kind for e in events] == ["start"]
    assert vad.feed(b"\x00\x00" * 16 * 400, 16_000) == []  # 400 ms: not yet the 500 ms of silence
    (end,) = vad.feed(b"\x00\x00" * 16 * 200, 16_000)
    assert end.kind == "end" and 0.28 <= end.duration_s <= 0.32
    assert vad.flush() is None


def test_vad_low_sensitivity_and_odd_chunks() -> None:
    low = wire.AutomaticActivityDetection(
        start_of_speech_sensitivity=wire.StartSensitivity.LOW, silence_duration_ms=100
    )
    vad = EnergyVad.from_setup(low)
    assert vad.feed(tone(300, 1500), 16_000) == []  # loud enough for HIGH, not for LOW
    data = tone(300, 8000)
    events = vad.feed(data[:1001], 16_000) + vad.feed(data[1001:], 16_000)  # split mid-sample
    assert [e.kind for e in events] == ["start"]
    end = vad.flush()
    assert end is not None and end.kind == "end"


class _ReferenceVad(EnergyVad):
    """The VAD as first written (a translate per 20 ms frame), kept to check the faster one."""

    def feed(self, data: bytes, rate: int) -> list[VadEvent]:
        events: list[VadEvent] = []
        if self.in_speech:
            self._turn_bytes += len(data)
        if self._carry:
            data = self._carry + data
        usable = len(data) - len(data) % 2
        self._carry = data[usable:]
        high = data[1:usable:2]
        top = self.threshold // 256
        quiet = bytes(range(top)) + bytes(range(256 - top, 256))
        if not high.translate(None, quiet) and not self.in_speech:
            self._loud_ms = 0.0
            return events
        step = max(1, rate * 20 // 1000)
        for start in range(0, len(high), step):
            frame = high[start : start + step]
            frame_ms = 1000 * len(frame) / rate
            if frame.translate(None, quiet):
                self._quiet_ms = 0.0
                if self.in_speech:
                    self._speech_ms += frame_ms
                else:
                    self._loud_ms += frame_ms
                    if self._loud_ms >= self.prefix_ms:
                        self.in_speech = True
                        self._speech_ms = self._loud_ms
                        self._turn_bytes = len(data)
                        events.append(VadEvent("start"))
            elif self.in_speech:
                self._quiet_ms += frame_ms
                if self._quiet_ms >= self.silence_ms:
                    events.append(self._end())
            else:
                self._loud_ms = 0.0
        return events


@given(
    chunks=st.lists(
        st.tuples(st.sampled_from([0, 300, 700, 800, 3000, 9000]), st.integers(1, 2500), st.booleans()),
        max_size=12,
    ),
    rate=st.sampled_from([8_000, 16_000, 24_000, 44_100]),
    low=st.booleans(),
)
def test_vad_decides_as_the_reference(chunks: list[tuple[int, int, bool]], rate: int, low: bool) -> None:
    """Chunks of tones, silence and halves of each, any length (odd too) and rate: the same
    events and state as the frame-by-frame reference."""
    config = wire.AutomaticActivityDetection(
        start_of_speech_sensitivity=wire.StartSensitivity.LOW if low else None, silence_duration_ms=60
    )
    fast, reference = EnergyVad.from_setup(config), _ReferenceVad.from_setup(config)
    for amplitude, nbytes, split in chunks:
        data = tone(1000 * nbytes // (2 * rate) + 1, amplitude, rate)[:nbytes]
        if split:
            data = data[: nbytes // 2] + bytes(nbytes - nbytes // 2)  # loud, then quiet
        assert fast.feed(data, rate) == reference.feed(data, rate)
        assert attrs.asdict(fast) == attrs.asdict(reference)
    assert fast.flush() == reference.flush()


def test_pcm_rate() -> None:
    assert pcm_rate("audio/pcm;rate=24000") == 24_000
    assert pcm_rate("audio/pcm; rate=8000") == 8_000
    assert pcm_rate("audio/pcm") == 16_000
    assert pcm_rate("audio/pcm;rate=abc") == 16_000


def test_routes_and_credentials() -> None:
    gemini = "/ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContent"
    route = live_route("/" + gemini + "?key=K", {})
    assert route is not None and route.api == "gemini" and route.version == "v1alpha"
    assert route.credential == "K" and "K" not in repr(route)
    route = live_route(gemini + "Constrained", {"authorization": "Token auth_tokens/abc"})
    assert route is not None and route.constrained and route.credential == "auth_tokens/abc"
    vertex = "/ws/google.cloud.aiplatform.v1beta1.LlmBidiService/BidiGenerateContent"
    route = live_route(vertex, {"authorization": "Bearer ya29"})
    assert route is not None and route.api == "vertex" and route.credential == "ya29"
    assert live_route("/ws/other", {}) is None
    assert live_route(gemini, {}) is not None


def test_snapshot_restore_and_compression() -> None:
    ctx = Context()
    for n in range(6):
        ctx.add_turn(f"t{n}", 10)
    snap = ctx.snapshot()
    ctx.add_turn("later", 10)
    restored = Context.restore(snap)
    assert restored.texts == [f"t{n}" for n in range(6)] and restored.turns == 6
    restored.compress(trigger=50, target=25)
    assert restored.texts == ["t4", "t5"] and restored.compressions == 1
    restored.compress(trigger=50, target=25)
    assert restored.compressions == 1  # under the trigger: nothing to do


def test_secrets_stay_out_of_reprs() -> None:
    config = EmulatorConfig(
        api_keys=frozenset({"sekrit-key"}),
        bearer_tokens=frozenset({"sekrit-bearer"}),
        faults_by_key={"sekrit-fault": FaultConfig()},
    )
    assert "sekrit" not in repr(config)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("connection_lifetime_s", 0),
        ("go_away_notice_s", -1.0),
        ("audio_session_s", float("nan")),
        ("audio_video_session_s", "120"),
        ("handle_validity_s", 0.0),
        ("context_window_native_audio", 0),
        ("context_window_default", 1.5),
        ("concurrent_sessions", 0),
        ("concurrent_sessions", True),
    ],
)
def test_bad_service_limits_are_config_errors_naming_field_and_value(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"^ServiceLimits\\.{field} must be ") as info:
        ServiceLimits(**{field: value})  # type: ignore[arg-type]
    assert str(info.value).endswith(repr(value))


def test_service_limits_keep_small_and_unbounded_values() -> None:
    limits = ServiceLimits(connection_lifetime_s=0.2, go_away_notice_s=0.05, concurrent_sessions=1)
    assert limits.connection_lifetime_s == 0.2 and limits.go_away_notice_s == 0.05
    assert limits.concurrent_sessions == 1
    assert ServiceLimits(handle_validity_s=float("inf")).handle_validity_s == float("inf")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("drop_probability", -0.1),
        ("close_1011_probability", 1.5),
        ("malformed_probability", float("nan")),
        ("drop_after_messages", -1),
        ("go_away_storm_interval_s", 0),
        ("latency_s", -0.01),
        ("jitter_s", float("inf")),
    ],
)
def test_bad_fault_settings_are_config_errors(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"^FaultConfig\\.{field} must be "):
        FaultConfig(**{field: value})  # type: ignore[arg-type]


def test_fault_probabilities_share_one_draw_so_their_sum_is_at_most_one() -> None:
    with pytest.raises(ConfigError, match=r"sum must be at most 1, not 1\.2"):
        FaultConfig(drop_probability=0.5, close_1011_probability=0.4, malformed_probability=0.3)
    exact = FaultConfig(drop_probability=0.1, close_1011_probability=0.2, malformed_probability=0.7)
    assert exact.malformed_probability == 0.7  # a sum of 1 in floating point (a hair over) is fine
    assert FaultConfig(drop_probability=1.0).drop_probability == 1.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("port", -1),
        ("port", 65536),
        ("chunks_per_reply", 0),
        ("first_chunk_delay_s", -1.0),
        ("chunk_interval_s", float("nan")),
        ("speech_chars_per_s", 0),
        ("resumption_update_interval_s", -5.0),
        ("resume_grace_s", -0.25),
        ("max_sessions", -1),
        ("max_frame_bytes", 1023),
        ("max_concurrent_per_key", -1),
        ("max_handles_per_session", 0),
        ("max_stored_sessions", -1),
        ("max_pending_calls", 1.5),
        ("setup_timeout_s", 0),
        ("http_idle_timeout_s", -60.0),
        ("send_queue_size", 0),
        ("close_timeout_s", 0.0),
        ("limits", {"connection_lifetime_s": 1}),
        ("faults", None),
        ("api_keys", "good"),  # a lone string would accept any substring of it
        ("bearer_tokens", b"token"),
    ],
)
def test_bad_emulator_settings_are_config_errors_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"^EmulatorConfig\\.{field} must be "):
        EmulatorConfig(**{field: value})  # type: ignore[arg-type]
