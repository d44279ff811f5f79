"""Many Live sessions as supervised actors in one nursery: admission, supervision, rotation.

Small modules with one job each; ``pool.py`` wires them together behind :func:`open_pool`:

* ``admission``: fair FIFO admission with a timeout, and the quota-refusal backoff;
* ``ratelimit``: connection attempts per second (GCRA);
* ``supervision``: one-for-one restart policy with OTP-style intensity limits;
* ``rotation``: the pure planner deciding when to rotate or end a session;
* ``handles``: the :class:`HandleStore` protocol and its in-memory default;
* ``metrics``: pool-wide counters, an HDR turn-latency histogram, per-session summaries.
"""

from livemesh.pool.admission import Admission as Admission
from livemesh.pool.admission import QuotaBackoff as QuotaBackoff
from livemesh.pool.errors import AdmissionTimeoutError as AdmissionTimeoutError
from livemesh.pool.errors import PoolClosedError as PoolClosedError
from livemesh.pool.errors import PoolError as PoolError
from livemesh.pool.errors import RestartIntensityError as RestartIntensityError
from livemesh.pool.errors import SessionLimitError as SessionLimitError
from livemesh.pool.handles import HandleStore as HandleStore
from livemesh.pool.handles import MemoryHandleStore as MemoryHandleStore
from livemesh.pool.handles import StoredHandle as StoredHandle
from livemesh.pool.metrics import LatencySummary as LatencySummary
from livemesh.pool.metrics import PoolSnapshot as PoolSnapshot
from livemesh.pool.metrics import SessionSummary as SessionSummary
from livemesh.pool.metrics import Traffic as Traffic
from livemesh.pool.pool import Pool as Pool
from livemesh.pool.pool import SessionFailure as SessionFailure
from livemesh.pool.pool import Supervised as Supervised
from livemesh.pool.pool import open_pool as open_pool
from livemesh.pool.ratelimit import RateLimiter as RateLimiter
from livemesh.pool.rotation import Reason as RotationReason
from livemesh.pool.rotation import RotationConfig as RotationConfig
from livemesh.pool.supervision import Action as RestartAction
from livemesh.pool.supervision import Restart as Restart
from livemesh.pool.supervision import RestartPolicy as RestartPolicy

__all__ = [
    "Admission",
    "AdmissionTimeoutError",
    "HandleStore",
    "LatencySummary",
    "MemoryHandleStore",
    "Pool",
    "PoolClosedError",
    "PoolError",
    "PoolSnapshot",
    "QuotaBackoff",
    "RateLimiter",
    "Restart",
    "RestartAction",
    "RestartIntensityError",
    "RestartPolicy",
    "RotationConfig",
    "RotationReason",
    "SessionFailure",
    "SessionLimitError",
    "SessionSummary",
    "StoredHandle",
    "Supervised",
    "Traffic",
    "open_pool",
]
