"""Where the examples connect: an in-process emulator by default, the real service with ``--real``.

Both paths look the same to the example: a dict of session options (model, auth, and for the
emulator its ``base_url``) to pass to :func:`livemesh.open_session`. The model is picked by
:func:`livemesh.resolve_model` in both cases: against the real service it asks which Live models
your key may use; against the emulator it asks the emulator's REST endpoint, which answers the
same way. ``target.emulator`` is the running emulator (``None`` with ``--real``), for the few
places where an example shows off something only the emulator can do on demand (``recall``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs

import livemesh
from livemesh.emulator import Emulator, EmulatorConfig, open_emulator


@attrs.frozen
class Target:
    options: dict[str, Any]
    """Pass as ``livemesh.open_session(**target.options, ...)``."""
    emulator: Emulator | None

    @property
    def real(self) -> bool:
        return self.emulator is None


def parser(description: str | None) -> argparse.ArgumentParser:
    """The arguments every example takes."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--real",
        action="store_true",
        help="talk to the real Gemini Live API (needs GEMINI_API_KEY) instead of the local emulator",
    )
    return p


@asynccontextmanager
async def live_target(
    real: bool, kind: livemesh.rest.ModelKind, emulator: EmulatorConfig | None = None
) -> AsyncIterator[Target]:
    """Session options for the real service (``real=True``) or for an emulator run in this block."""
    if real:
        key = os.environ.get("GEMINI_API_KEY")
        if not key:
            raise SystemExit("--real needs GEMINI_API_KEY in the environment")
        auth = livemesh.ApiKey(key)
        model = await livemesh.resolve_model(kind, auth)
        yield Target(options={"model": model, "auth": auth}, emulator=None)
        return
    # 50 ms before the first reply chunk: a real model takes a moment too.
    async with open_emulator(emulator or EmulatorConfig(first_chunk_delay_s=0.05)) as emu:
        auth = livemesh.ApiKey("emulator-key")  # the emulator accepts any non-empty key
        model = await livemesh.resolve_model(kind, auth, base_url=emu.http_url)
        yield Target(options={"model": model, "auth": auth, "base_url": emu.url}, emulator=emu)
