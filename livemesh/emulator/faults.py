"""Deliberate, seeded misbehaviour per server message (drops, 1011 closes, malformed frames, latency).

One :class:`FaultPlan` per connection, drawing from its own ``random.Random`` seeded with
``"{seed}:{connection_number}"``, so a run with the same seed and the same traffic misbehaves the
same way. Connection-level faults (goAway storms, silence after goAway) live in the engine.
"""

from __future__ import annotations

import enum
import random

from livemesh.emulator.config import FaultConfig


class Action(enum.Enum):
    SEND = "send"
    DROP = "drop"
    CLOSE = "close"
    MALFORMED = "malformed"


MALFORMED_FRAME = b'{"serverContent": {"modelTurn": '
"""What a malformed frame looks like: truncated JSON."""


class FaultPlan:
    """Decides, message by message, whether to send, drop the connection, close 1011 or garble."""

    def __init__(self, config: FaultConfig, connection_number: int) -> None:
        self._config = config
        self._rng = random.Random(f"{config.seed}:{connection_number}")
        self.sent = 0

    def next(self) -> tuple[Action, float]:
        """The fate of the next server message and the delay before it."""
        config = self._config
        delay = config.latency_s
        if config.jitter_s:
            delay += self._rng.random() * config.jitter_s
        self.sent += 1
        if config.drop_after_messages is not None and self.sent > config.drop_after_messages:
            return Action.DROP, delay
        draw = self._rng.random()
        if draw < config.drop_probability:
            return Action.DROP, delay
        draw -= config.drop_probability
        if draw < config.close_1011_probability:
            return Action.CLOSE, delay
        draw -= config.close_1011_probability
        if draw < config.malformed_probability:
            return Action.MALFORMED, delay
        return Action.SEND, delay
