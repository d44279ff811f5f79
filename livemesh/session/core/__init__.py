"""The session protocol as a synchronous state machine: no trio, no clock, no I/O.

See :mod:`livemesh.session.core.core` for the events and decisions, and
:mod:`livemesh.session.core.state` for the states and their transitions.
"""

from livemesh.session.core.config import CoreConfig as CoreConfig
from livemesh.session.core.core import SessionCore as SessionCore
from livemesh.session.core.core import Step as Step
from livemesh.session.core.core import Write as Write
from livemesh.session.core.outgoing import Outgoing as Outgoing
from livemesh.session.core.state import MovePhase as MovePhase
from livemesh.session.core.state import SessionState as SessionState

__all__ = ["CoreConfig", "MovePhase", "Outgoing", "SessionCore", "SessionState", "Step", "Write"]
