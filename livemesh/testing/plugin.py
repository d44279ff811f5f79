"""livemesh's pytest plugin: fixtures for testing code built on the Live API.

pytest loads it by itself wherever livemesh is installed (the ``pytest11`` entry point named
``livemesh``); disable it with ``-p no:livemesh``. It imports nothing at load time beyond
pytest, so it costs nothing and breaks nothing in a project that does not use it, with or
without hypothesis and pytest-trio installed. Its fixtures:

* ``emulator``: a running :mod:`livemesh.emulator` (``emulator.url``, ``emulator.http_url``,
  ``emulator.stats(session_id)``, and the faults ``await emulator.drop()`` and
  ``await emulator.send_go_away(time_left=...)``). It is a trio fixture: the test runs under
  pytest-trio (``trio_mode = true``, or ``@pytest.mark.trio``).
* ``emulator_config``: the :class:`~livemesh.emulator.EmulatorConfig` the ``emulator`` starts
  with; override it in a ``conftest.py``, or parametrize it
  (``@pytest.mark.parametrize("emulator_config", [EmulatorConfig(...)])``).
* ``scripted_server``: :func:`~livemesh.testing.open_scripted_server`, to call inside the test
  with the script (``async with scripted_server(stream) as server:``). Session-scoped and
  stateless, so a hypothesis test may take it: each example opens its own server inside its own
  trio run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from livemesh.emulator import Emulator, EmulatorConfig
    from livemesh.testing.server import ScriptedServerFactory

__all__ = ["emulator", "emulator_config", "scripted_server"]


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """The configuration the ``emulator`` fixture starts with: the service's defaults.

    Returns:
        ``EmulatorConfig()``; override the fixture for another.
    """
    from livemesh.emulator import EmulatorConfig

    return EmulatorConfig()


@pytest.fixture
async def emulator(emulator_config: EmulatorConfig) -> AsyncIterator[Emulator]:
    """A running emulator for the duration of the test (a trio fixture).

    Args:
        emulator_config: Its configuration (the fixture of that name).

    Yields:
        The :class:`~livemesh.emulator.Emulator`: ``url`` for a session's ``base_url``,
        ``http_url`` for REST, ``stats(session_id)``, ``drop()``, ``send_go_away()`` ...
    """
    from livemesh.emulator import open_emulator

    async with open_emulator(emulator_config) as emu:
        yield emu


@pytest.fixture(scope="session")
def scripted_server() -> ScriptedServerFactory:
    """:func:`~livemesh.testing.open_scripted_server`, to open a server inside the test.

    Returns:
        The function; ``async with scripted_server(script) as server:`` serves ``script`` to the
        first client that connects to ``server.url``.
    """
    from livemesh.testing.server import open_scripted_server

    return open_scripted_server
