"""Without OpenTelemetry installed, every hook is the shared no-op and nothing fails.

Run in a fresh interpreter where ``opentelemetry`` cannot be imported (a ``None`` entry in
``sys.modules`` makes every import of it raise ImportError), as if the extra were not installed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["opentelemetry"] = None
    import livemesh, livemesh.session, livemesh.pool
    from livemesh import telemetry
    from livemesh.errors import ConfigError

    assert not telemetry.available()
    assert telemetry.current() is None
    probe = telemetry.session_probe("s1", model="m", api="gemini", engine="sansio")
    assert probe is telemetry.NOOP_SESSION and not probe.enabled
    assert telemetry.pool_probe(model="m", waiting=lambda: 1) is telemetry.NOOP_POOL
    probe.opened()
    probe.connection_opened("srv", resumed=False)
    probe.turn_started(0.0)
    probe.first_chunk(0.1)
    probe.turn_complete(0.2)
    probe.tool_started("c", "t", 0.0)
    probe.tool_done("c", "ok", 0.1)
    probe.move_done("go_away", 0.1)
    probe.connection_closed(1000)
    probe.closed(None)
    for call in (telemetry.install, lambda: telemetry.serve_prometheus(0).__enter__()):
        try:
            call()
        except ConfigError as exc:
            assert "livemesh[otel]" in str(exc), exc
        else:
            raise AssertionError("expected ConfigError")
    assert not [m for m in sys.modules if m.startswith("opentelemetry") and sys.modules[m] is not None]
    print("ok")
    """
)


def test_hooks_are_no_ops_without_opentelemetry() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
