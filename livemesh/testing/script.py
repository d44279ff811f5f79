"""What a scripted server plays: server messages, raw frames, and a few actions.

A script is a list of steps for one connection, played in order after the client's setup
(see :func:`livemesh.testing.open_scripted_server`):

* a :class:`~livemesh.wire.messages.ServerMessage` is encoded and sent as the service sends it
  (a binary frame of camelCase JSON);
* ``bytes`` go out as a binary frame and ``str`` as a text frame, exactly as given; a ``dict`` is
  a JSON object, sent as a binary frame of its JSON (for spellings the encoder never writes,
  e.g. from :func:`livemesh.testing.strategies.server_json`);
* :class:`Expect` waits for the client to send a matching message;
* :class:`Close` ends the connection with a close frame, :class:`Drop` without one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

import attrs

from livemesh.errors import LivemeshError
from livemesh.wire import messages as m

__all__ = ["ClientProtocolError", "Close", "Drop", "Expect", "Step"]


@attrs.frozen
class Close:
    """Close the connection with a close frame, as the service does when it ends a session.

    Attributes:
        code: The close code (1011 the service's "try again", 1007/1008 its refusals).
        reason: The close reason (at most 123 bytes of UTF-8).
    """

    code: int = 1011
    reason: str = "Internal error occurred."

    def __attrs_post_init__(self) -> None:
        if not (1000 <= self.code <= 4999) or self.code in (1004, 1005, 1006, 1015):
            raise ValueError(f"{self.code} is not a close code a peer may send")
        if len(self.reason.encode("utf-8")) > 123:
            raise ValueError("a close reason must fit in 123 bytes of UTF-8")


@attrs.frozen
class Drop:
    """Drop the connection: TCP closed with no close frame (the client sees 1006)."""


@attrs.frozen
class Expect:
    """Wait until the client sends a matching message on this connection.

    Messages are matched in the order they arrived, each at most once: two ``Expect`` steps for
    ``"tool_response"`` wait for two tool responses. The client's setup is not matched.

    Attributes:
        kind: The oneof field the message sets (``"tool_response"``, ``"client_content"``,
            ``"realtime_input"`` ...), or ``None`` for any.
        where: A further test the message must pass, or ``None``.
    """

    kind: str | None = None
    where: Callable[[m.ClientMessage], bool] | None = None

    def matches(self, message: m.ClientMessage) -> bool:
        """Whether ``message`` satisfies this step.

        Args:
            message: A client message.

        Returns:
            ``True`` if its kind and the ``where`` test agree.
        """
        if self.kind is not None and message.kind != self.kind:
            return False
        return self.where is None or bool(self.where(message))


Step: TypeAlias = "m.ServerMessage | bytes | str | Mapping[str, Any] | Close | Drop | Expect"
"""One step of a script."""


class ClientProtocolError(LivemeshError):
    """The client under test broke the protocol: a frame that is not a Live API message, or a
    first message that is not ``setup``. Raised when a strict scripted server's block ends."""
