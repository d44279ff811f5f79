"""How many examples our own CI draws, kept modest so the suite stays quick.

Each property runs ``max_examples`` examples here (hypothesis's default is 100). A property that
opens sockets per example (a scripted server, a session) runs fewer and has no deadline: an
example's time is then the scheduler's, not the code's. Draw more locally with
``HYPOTHESIS_MAX_EXAMPLES=500 pytest tests/testing``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_SCALE = int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "0"))

PURE = settings(max_examples=_SCALE or 40, deadline=None)
"""Properties without I/O: codecs, strategies."""

PER_CLASS = settings(max_examples=_SCALE or 6, deadline=None)
"""Properties parametrized over every message class (one test per class, many classes)."""

NETWORK = settings(max_examples=_SCALE or 25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
"""Properties that open a server and a client per example."""
