"""livemesh for asyncio applications.

(placeholder docstring: rewritten below)
"""

from livemesh.aio.bridge import open_emulator as open_emulator
from livemesh.aio.bridge import run_trio as run_trio
from livemesh.aio.bridge import trio_block as trio_block
from livemesh.aio.guest import GuestRunError as GuestRunError
from livemesh.aio.pool import Handler as Handler
from livemesh.aio.pool import Pool as Pool
from livemesh.aio.pool import Supervised as Supervised
from livemesh.aio.pool import open_pool as open_pool
from livemesh.aio.rest import create_ephemeral_token as create_ephemeral_token
from livemesh.aio.rest import list_live_models as list_live_models
from livemesh.aio.rest import resolve_model as resolve_model
from livemesh.aio.session import Session as Session
from livemesh.aio.session import open_session as open_session
