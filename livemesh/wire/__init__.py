"""The Live API wire protocol, sans-IO: message classes, the one converter, small helpers."""

from livemesh.errors import DecodeError as DecodeError
from livemesh.errors import EncodeError as EncodeError
from livemesh.wire.codec import DEFAULT_MAX_FRAME_BYTES as DEFAULT_MAX_FRAME_BYTES
from livemesh.wire.codec import converter as converter
from livemesh.wire.codec import decode_client as decode_client
from livemesh.wire.codec import decode_server as decode_server
from livemesh.wire.codec import encode_client as encode_client
from livemesh.wire.codec import encode_server as encode_server
from livemesh.wire.codec import format_duration as format_duration
from livemesh.wire.codec import merge_json as merge_json
from livemesh.wire.codec import parse_duration as parse_duration
from livemesh.wire.fields import UnknownKey as UnknownKey
from livemesh.wire.fields import WireField as WireField
from livemesh.wire.fields import unknown_fields as unknown_fields
from livemesh.wire.fields import unknown_keys as unknown_keys
from livemesh.wire.fields import wire_fields as wire_fields
from livemesh.wire.helpers import audio_input as audio_input
from livemesh.wire.helpers import client_content as client_content
from livemesh.wire.helpers import extract_audio as extract_audio
from livemesh.wire.helpers import extract_text as extract_text
from livemesh.wire.helpers import input_transcript as input_transcript
from livemesh.wire.helpers import is_media as is_media
from livemesh.wire.helpers import output_transcript as output_transcript
from livemesh.wire.helpers import response_parts as response_parts
from livemesh.wire.helpers import split_media_chunks as split_media_chunks
from livemesh.wire.helpers import text_input as text_input
from livemesh.wire.helpers import video_input as video_input
from livemesh.wire.messages import *  # noqa: F403
from livemesh.wire.streamed import StreamedCalls as StreamedCalls
from livemesh.wire.streamed import assemble_args as assemble_args
