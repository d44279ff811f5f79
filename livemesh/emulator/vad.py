"""An energy-based voice activity detector over 16-bit PCM, timed in *audio* time.

Timing comes from the samples, not the wall clock, so a test that streams faster than real time
gets the same turns as a real microphone. Speech starts when the peak amplitude of 20 ms frames
stays above a threshold for the prefix padding; it ends after ``silence_duration_ms`` of frames
below it. Defaults follow the service's: high start/end sensitivity on the Gemini API.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Final, Literal

import attrs

from livemesh import wire

FRAME_MS: Final = 20
THRESHOLD_HIGH: Final = 768
THRESHOLD_LOW: Final = 2304


@cache
def _loudness_table(threshold: int) -> bytes:
    """A ``bytes.translate`` table over the high bytes of little-endian int16 samples: 0 for a
    sample with ``-threshold <= s < threshold`` (``threshold`` a multiple of 256), 1 for a loud one."""
    top = threshold // 256
    return bytes(0 if b < top or b >= 256 - top else 1 for b in range(256))


@lru_cache(maxsize=64)
def pcm_rate(mime_type: str | None, default: int = 16_000) -> int:
    """The ``rate=`` of an ``audio/pcm;rate=N`` MIME type."""
    if mime_type:
        for param in mime_type.split(";")[1:]:
            name, _, value = param.strip().partition("=")
            if name.lower() == "rate" and value.isdigit() and int(value) > 0:
                return int(value)
    return default


@attrs.frozen
class VadEvent:
    kind: Literal["start", "end"]
    duration_s: float = 0.0
    """For "end": speech duration (from speech start to the last loud frame)."""
    nbytes: int = 0
    """For "end": bytes of audio in the turn (speech plus trailing silence)."""


@attrs.define
class EnergyVad:
    """Feed chunks with :meth:`feed`; read start/end events; :meth:`flush` ends a turn in progress."""

    threshold: int = THRESHOLD_HIGH
    """Peak amplitude that counts as speech (a multiple of 256)."""
    prefix_ms: int = FRAME_MS
    silence_ms: int = 500
    in_speech: bool = False
    _loud_ms: float = 0.0
    _quiet_ms: float = 0.0
    _speech_ms: float = 0.0
    _turn_bytes: int = 0
    _carry: bytes = b""

    @classmethod
    def from_setup(cls, config: wire.AutomaticActivityDetection | None) -> EnergyVad:
        vad = cls()
        if config is None:
            return vad
        if config.start_of_speech_sensitivity == wire.StartSensitivity.LOW:
            vad.threshold = THRESHOLD_LOW
            vad.prefix_ms = 5 * FRAME_MS
        if config.end_of_speech_sensitivity == wire.EndSensitivity.LOW:
            vad.silence_ms = 1000
        if config.prefix_padding_ms is not None:
            vad.prefix_ms = max(FRAME_MS, config.prefix_padding_ms)
        if config.silence_duration_ms is not None:
            vad.silence_ms = max(FRAME_MS, config.silence_duration_ms)
        return vad

    def feed(self, data: bytes, rate: int) -> list[VadEvent]:
        """Events for one chunk of 16-bit little-endian PCM at ``rate`` Hz.

        Loudness is judged on the samples' high bytes, mapped to 0 (quiet) or 1 (loud) by one
        ``bytes.translate`` and searched per frame with ``find`` (C speed: the emulator runs
        this for every audio message of every session; a chunk all quiet or all loud, the usual
        case, needs no search per frame)."""
        events: list[VadEvent] = []
        if self.in_speech:
            self._turn_bytes += len(data)
        if self._carry:
            data = self._carry + data
        usable = len(data) - len(data) % 2
        self._carry = data[usable:]
        loud = data[1:usable:2].translate(_loudness_table(self.threshold))
        any_loud = 1 in loud
        if not any_loud and not self.in_speech:
            self._loud_ms = 0.0  # a silent chunk outside speech: nothing can happen
            return events
        uniform = None if any_loud and 0 in loud else any_loud  # None: some frames differ
        size = len(loud)
        step = max(1, rate * FRAME_MS // 1000)
        for start in range(0, size, step):
            end = min(start + step, size)
            frame_ms = 1000 * (end - start) / rate
            if uniform if uniform is not None else loud.find(1, start, end) >= 0:
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

    @property
    def idle(self) -> bool:
        """No utterance open and none starting: a snapshot taken now loses no speech state."""
        return not self.in_speech and self._loud_ms == 0.0

    def flush(self) -> VadEvent | None:
        """End the turn in progress now (``audioStreamEnd``), if any."""
        return self._end() if self.in_speech else None

    def _end(self) -> VadEvent:
        event = VadEvent("end", round(self._speech_ms / 1000, 3), self._turn_bytes)
        self.in_speech = False
        self._loud_ms = self._quiet_ms = self._speech_ms = 0.0
        self._turn_bytes = 0
        return event
