"""The session protocol as a synchronous state machine: no trio, no clock, no I/O.

See :mod:`livemesh.session.core.core` for the events and decisions, and
:mod:`livemesh.session.core.state` for the tables of every transition (an event a table does not
list for the current state raises ``LocalProtocolError`` naming both).

Session::

    NEW --start--> CONNECTING --opened--> OPEN --move--> MOVING --opened--> OPEN
                       ^   |                |  \\            |
                       |   +--lost----------+   +--lost------+--> CONNECTING (resume, replay)
                       +-------------------------------------+
    any live state --close--> CLOSING --finish--> CLOSED
    any live state --fail--> FAILED;   NEW --close--> CLOSED

Move (while OPEN or MOVING; a drop ends it: the reconnect is the move)::

    IDLE --want--> SEEKING --hold_early--> HOLDING_EARLY --hold--> HOLDING --leave--> LEAVING
                      |                        |    ^                |  ^
                      +--hold------------------)----)----------------+  |
                                               |    |                |  |
                                         release    hold_early  release  hold
                                               v    |                v  |
                                               RELEASED <------------+--+
    any phase --leave--> LEAVING (the deadline: forced);  LEAVING --arrive--> IDLE
    any phase --close--> FLUSHING --arrive--> FLUSHING (a reconnect to flush what is queued)

Input is held in HOLDING_EARLY (the model answers: the handle after the turn covers all),
HOLDING (a quiet point: a handle after the ping sent then covers all) and LEAVING; it flows in
SEEKING and RELEASED (no handle could come while it is held: the user is mid-utterance).
"""

from livemesh.session.core.config import CoreConfig as CoreConfig
from livemesh.session.core.core import SessionCore as SessionCore
from livemesh.session.core.core import Step as Step
from livemesh.session.core.core import Write as Write
from livemesh.session.core.outgoing import Outgoing as Outgoing
from livemesh.session.core.state import MovePhase as MovePhase
from livemesh.session.core.state import SessionState as SessionState

__all__ = ["CoreConfig", "MovePhase", "Outgoing", "SessionCore", "SessionState", "Step", "Write"]
