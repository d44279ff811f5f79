"""livemesh: many concurrent Gemini Live API sessions in one trio nursery.

The layers, in the direction data flows: :mod:`livemesh.wire` (sans-IO messages and codec),
:mod:`livemesh.transport` (the WebSocket), :mod:`livemesh.session` (one session as an actor),
:mod:`livemesh.pool` (many sessions, supervised and rotated); :mod:`livemesh.emulator` is the local
Live API server and :mod:`livemesh.bench` the benchmark. This module re-exports the public names.
"""

from livemesh.auth import ApiKey as ApiKey
from livemesh.auth import Auth as Auth
from livemesh.auth import EphemeralToken as EphemeralToken
from livemesh.auth import VertexAI as VertexAI
from livemesh.auth import google_auth_token_provider as google_auth_token_provider
from livemesh.errors import AuthError as AuthError
from livemesh.errors import CertificateError as CertificateError
from livemesh.errors import ConfigError as ConfigError
from livemesh.errors import ContextWindowError as ContextWindowError
from livemesh.errors import DecodeError as DecodeError
from livemesh.errors import EncodeError as EncodeError
from livemesh.errors import LivemeshError as LivemeshError
from livemesh.errors import LocalProtocolError as LocalProtocolError
from livemesh.errors import QuotaError as QuotaError
from livemesh.errors import ReconnectError as ReconnectError
from livemesh.errors import RemoteProtocolError as RemoteProtocolError
from livemesh.errors import ServiceClosedError as ServiceClosedError
from livemesh.errors import SessionClosedError as SessionClosedError
from livemesh.errors import SessionError as SessionError
from livemesh.errors import SetupRejectedError as SetupRejectedError
from livemesh.errors import ToolCallLimitError as ToolCallLimitError
from livemesh.limits import DEFAULT_LIMITS as DEFAULT_LIMITS
from livemesh.limits import ServiceLimits as ServiceLimits
from livemesh.pool import AdmissionTimeoutError as AdmissionTimeoutError
from livemesh.pool import HandleStore as HandleStore
from livemesh.pool import MemoryHandleStore as MemoryHandleStore
from livemesh.pool import Pool as Pool
from livemesh.pool import PoolClosedError as PoolClosedError
from livemesh.pool import PoolSnapshot as PoolSnapshot
from livemesh.pool import Restart as Restart
from livemesh.pool import RestartIntensityError as RestartIntensityError
from livemesh.pool import RestartPolicy as RestartPolicy
from livemesh.pool import RotationConfig as RotationConfig
from livemesh.pool import SessionFailure as SessionFailure
from livemesh.pool import SessionLimitError as SessionLimitError
from livemesh.pool import StoredHandle as StoredHandle
from livemesh.pool import Supervised as Supervised
from livemesh.pool import open_pool as open_pool
from livemesh.rest import LiveConnectConstraints as LiveConnectConstraints
from livemesh.rest import ModelInfo as ModelInfo
from livemesh.rest import ModelResolver as ModelResolver
from livemesh.rest import RestError as RestError
from livemesh.rest import create_ephemeral_token as create_ephemeral_token
from livemesh.rest import list_live_models as list_live_models
from livemesh.rest import resolve_model as resolve_model
from livemesh.session import Callbacks as Callbacks
from livemesh.session import FunctionTool as FunctionTool
from livemesh.session import HandleHook as HandleHook
from livemesh.session import RetryPolicy as RetryPolicy
from livemesh.session import RotationPolicy as RotationPolicy
from livemesh.session import Session as Session
from livemesh.session import SessionConfig as SessionConfig
from livemesh.session import SessionMetrics as SessionMetrics
from livemesh.session import Turn as Turn
from livemesh.session import declaration_from_function as declaration_from_function
from livemesh.session import function_tool as function_tool
from livemesh.session import open_session as open_session
from livemesh.transport import ConnectionLostError as ConnectionLostError
from livemesh.transport import TransportOptions as TransportOptions

__version__ = "0.1.0"
