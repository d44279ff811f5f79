"""livemesh: many concurrent Gemini Live API sessions in one trio nursery."""

from livemesh.errors import (
    AuthError as AuthError,
)
from livemesh.errors import (
    ConfigError as ConfigError,
)
from livemesh.errors import (
    DecodeError as DecodeError,
)
from livemesh.errors import (
    LivemeshError as LivemeshError,
)
from livemesh.errors import (
    LocalProtocolError as LocalProtocolError,
)
from livemesh.errors import (
    QuotaError as QuotaError,
)
from livemesh.errors import (
    ReconnectError as ReconnectError,
)
from livemesh.errors import (
    RemoteProtocolError as RemoteProtocolError,
)
from livemesh.errors import (
    SessionClosedError as SessionClosedError,
)
from livemesh.errors import (
    SessionError as SessionError,
)
from livemesh.errors import (
    SetupRejectedError as SetupRejectedError,
)
from livemesh.limits import DEFAULT_LIMITS as DEFAULT_LIMITS
from livemesh.limits import ServiceLimits as ServiceLimits

__version__ = "0.1.0"
