"""The Live API wire protocol, sans-IO: message classes, the one converter, small helpers."""

from livemesh.wire.codec import (
    DEFAULT_MAX_FRAME_BYTES as DEFAULT_MAX_FRAME_BYTES,
)
from livemesh.wire.codec import (
    converter as converter,
)
from livemesh.wire.codec import (
    decode_client as decode_client,
)
from livemesh.wire.codec import (
    decode_server as decode_server,
)
from livemesh.wire.codec import (
    encode_client as encode_client,
)
from livemesh.wire.codec import (
    encode_server as encode_server,
)
from livemesh.wire.codec import (
    format_duration as format_duration,
)
from livemesh.wire.codec import (
    parse_duration as parse_duration,
)
from livemesh.wire.messages import *  # noqa: F403
