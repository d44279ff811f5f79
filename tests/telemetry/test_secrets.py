"""What a caller passes in free text never reaches a metric or a span: a key or a user's words in
a move's reason, a tool's outcome or an error's message become closed-set labels or a class name."""

from __future__ import annotations

from livemesh import telemetry
from livemesh.errors import AuthError
from tests.telemetry.conftest import Recorded, assert_never_recorded, strings_recorded

KEY = "AIzaSENTINEL-KEY-0123456789"
TEXT = "SENTINEL user words: my card number is 4111"


def test_free_text_handed_to_the_hooks_is_never_recorded(recorded: Recorded) -> None:
    probe = telemetry.session_probe("s1", model="m-live")
    probe.opened()
    probe.connection_opened("srv")
    probe.move_started(f"{TEXT} {KEY}")
    probe.move_done(f"{TEXT} {KEY}", 0.1)
    probe.tool_started("c1", "lookup", 0.0)
    probe.tool_done("c1", f"{TEXT} {KEY}", 1.0)
    probe.closed(AuthError(f"the key {KEY} was refused while saying {TEXT}"))
    assert any("AuthError" in s for s in strings_recorded(recorded))  # the helper sees what is there
    assert_never_recorded(recorded, KEY, TEXT, "SENTINEL")
