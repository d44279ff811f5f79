"""One Live API session as a trio actor: config, sending, receiving, tools, seamless reconnects.

Public names are re-exported here; the modules each have one job: the public ``Session`` (actor),
its life around connections (lifecycle, connections), its tasks (reader, writer, mover,
toolrunner) and what they share (links), the message builders (builders), config, turns, tools,
metrics, callbacks. Every decision is the sans-I/O core's (``livemesh.session.core``).
"""

from livemesh.session.actor import HandleHook as HandleHook
from livemesh.session.actor import Session as Session
from livemesh.session.callbacks import Callbacks as Callbacks
from livemesh.session.config import RetryPolicy as RetryPolicy
from livemesh.session.config import RotationPolicy as RotationPolicy
from livemesh.session.config import SessionConfig as SessionConfig
from livemesh.session.metrics import SessionMetrics as SessionMetrics
from livemesh.session.opening import open_session as open_session
from livemesh.session.tools import FunctionTool as FunctionTool
from livemesh.session.tools import declaration_from_function as declaration_from_function
from livemesh.session.tools import function_tool as function_tool
from livemesh.session.turns import Turn as Turn

__all__ = [
    "Callbacks",
    "FunctionTool",
    "HandleHook",
    "RetryPolicy",
    "RotationPolicy",
    "Session",
    "SessionConfig",
    "SessionMetrics",
    "Turn",
    "declaration_from_function",
    "function_tool",
    "open_session",
]
