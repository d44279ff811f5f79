"""Property-based protocol tests for code built on the Live API: traffic, servers, fixtures.

Install with ``pip install 'livemesh[testing]'`` (brings hypothesis and pytest-trio). Then:

* :mod:`livemesh.testing.strategies`: hypothesis strategies for every client and server
  message, as objects or wire JSON, and for realistic traffic (model turns, interruptions, tool
  calls and their cancellation, ``goAway`` and resumption, whole sessions). Importing it imports
  hypothesis; importing this package does not.
* :func:`open_scripted_server`: a WebSocket server that plays a given list of server messages
  to whatever client connects, and records what the client sends back.
* :func:`to_json`: a reference writer of wire JSON in the spellings real peers use.
* A pytest plugin (:mod:`livemesh.testing.plugin`), loaded by pytest on its own once livemesh is
  installed: the fixtures ``emulator`` (a running :mod:`livemesh.emulator`), ``emulator_config``
  and ``scripted_server`` (:func:`open_scripted_server`).
"""

from livemesh.testing.script import ClientProtocolError as ClientProtocolError
from livemesh.testing.script import Close as Close
from livemesh.testing.script import Drop as Drop
from livemesh.testing.script import Expect as Expect
from livemesh.testing.script import Step as Step
from livemesh.testing.server import LIVE_PATH as LIVE_PATH
from livemesh.testing.server import ScriptedConnection as ScriptedConnection
from livemesh.testing.server import ScriptedServer as ScriptedServer
from livemesh.testing.server import ScriptedServerFactory as ScriptedServerFactory
from livemesh.testing.server import open_scripted_server as open_scripted_server
from livemesh.testing.wirejson import duration_text as duration_text
from livemesh.testing.wirejson import to_json as to_json

__all__ = [
    "LIVE_PATH",
    "ClientProtocolError",
    "Close",
    "Drop",
    "Expect",
    "ScriptedConnection",
    "ScriptedServer",
    "ScriptedServerFactory",
    "Step",
    "duration_text",
    "open_scripted_server",
    "to_json",
]
