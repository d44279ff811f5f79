"""One client message on its way out: its value (for the core's decisions) and its bytes (to send).

Messages are encoded before they reach the core (``livemesh.session.builders``), so a caller's
unencodable value fails at its call and the writer only moves bytes.
"""

from __future__ import annotations

import attrs

from livemesh import wire

__all__ = ["Outgoing"]


@attrs.define(eq=False, slots=True)
class Outgoing:
    """One message to send: the value and its encoded bytes."""

    message: wire.ClientMessage
    data: bytes
    call_ids: tuple[str, ...] = ()
    """For tool responses: the ids answered (dropped if their calls are void after a resume)."""
    blocking_answer: bool = False
    """An answer to a BLOCKING call: the turn's completion proves the server consumed it."""
    priority: bool = False
    """A tool answer: sent before queued input and never held behind it."""

    @property
    def kind(self) -> str:
        return self.message.kind

    @property
    def is_realtime(self) -> bool:
        return self.message.realtime_input is not None

    @property
    def expects_reply(self) -> bool:
        """True if the server always answers this message with a turn (a user text turn), so only
        its ``turnComplete`` proves it consumed (never the timing of a handle)."""
        message = self.message
        if message.client_content is not None:
            return bool(message.client_content.turn_complete)
        rt = message.realtime_input
        return rt is not None and rt.text is not None

    @property
    def triggers_turn(self) -> bool:
        """True if the model is expected to answer this message (a quiet point ends)."""
        message = self.message
        if message.client_content is not None:
            return bool(message.client_content.turn_complete)
        rt = message.realtime_input
        if rt is not None:
            return rt.text is not None or rt.activity_end is not None or bool(rt.audio_stream_end)
        return False
