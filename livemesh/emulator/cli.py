"""``python -m livemesh serve``: run the emulator until interrupted.

The first line printed is ``listening on ws://HOST:PORT`` (``wss://`` with TLS), so scripts can
start it with ``--port 0`` and read the port. Ctrl-C (or SIGTERM) exits cleanly with status 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

import trio

from livemesh.emulator.app import open_emulator
from livemesh.emulator.config import EmulatorConfig, FaultConfig
from livemesh.errors import ConfigError
from livemesh.limits import ServiceLimits


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="accepted API key (repeatable); default: any key",
    )
    tls = parser.add_argument_group("TLS (the official SDK only speaks wss:// with an API key)")
    tls.add_argument("--certfile")
    tls.add_argument("--keyfile")
    tls.add_argument("--tls", action="store_true", help="serve TLS with a throwaway trustme CA")
    tls.add_argument("--ca-out", metavar="PATH", help="write the throwaway CA's PEM here (with --tls)")
    model = parser.add_argument_group("scripted model")
    model.add_argument("--first-chunk-delay", type=float, default=0.0, metavar="S")
    model.add_argument("--chunk-interval", type=float, default=0.0, metavar="S")
    model.add_argument("--chunks-per-reply", type=int, default=3)
    model.add_argument("--resumption-update-interval", type=float, default=5.0, metavar="S")
    model.add_argument(
        "--stream-function-args",
        action="store_true",
        help="stream function call arguments (partialArgs until willContinue is false)",
    )
    limits = parser.add_argument_group("service limits (seconds)")
    defaults = ServiceLimits()
    limits.add_argument("--connection-lifetime", type=float, default=defaults.connection_lifetime_s)
    limits.add_argument("--go-away-notice", type=float, default=defaults.go_away_notice_s)
    limits.add_argument("--audio-session", type=float, default=defaults.audio_session_s)
    limits.add_argument("--audio-video-session", type=float, default=defaults.audio_video_session_s)
    limits.add_argument("--handle-validity", type=float, default=defaults.handle_validity_s)
    limits.add_argument(
        "--context-window",
        type=int,
        default=defaults.context_window_default,
        metavar="TOKENS",
        help="context window of non-native-audio models",
    )
    limits.add_argument(
        "--context-window-native-audio",
        type=int,
        default=defaults.context_window_native_audio,
        metavar="TOKENS",
    )
    limits.add_argument("--concurrent-per-key", type=int, default=None)
    limits.add_argument("--max-sessions", type=int, default=10_000)
    limits.add_argument(
        "--allow-resume-while-open",
        action="store_true",
        help="take over a session whose old connection is open instead of refusing (1011)",
    )
    faults = parser.add_argument_group("fault injection (deterministic with --seed)")
    faults.add_argument("--seed", type=int, default=0)
    faults.add_argument("--drop-probability", type=float, default=0.0)
    faults.add_argument("--close-1011-probability", type=float, default=0.0)
    faults.add_argument("--malformed-probability", type=float, default=0.0)
    faults.add_argument("--go-away-storm", type=float, default=None, metavar="S")
    faults.add_argument("--silent-after-go-away", action="store_true")
    faults.add_argument("--latency", type=float, default=0.0, metavar="S")
    faults.add_argument("--jitter", type=float, default=0.0, metavar="S")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every connection error")


def config_from(args: argparse.Namespace) -> EmulatorConfig:
    """The :class:`EmulatorConfig` the parsed arguments describe."""
    return EmulatorConfig(
        host=args.host,
        port=args.port,
        api_keys=frozenset(args.api_keys) if args.api_keys else None,
        certfile=args.certfile,
        keyfile=args.keyfile,
        tls=args.tls,
        ca_out=args.ca_out,
        first_chunk_delay_s=args.first_chunk_delay,
        chunk_interval_s=args.chunk_interval,
        chunks_per_reply=args.chunks_per_reply,
        resumption_update_interval_s=args.resumption_update_interval,
        stream_function_args=args.stream_function_args,
        limits=ServiceLimits(
            connection_lifetime_s=args.connection_lifetime,
            go_away_notice_s=args.go_away_notice,
            audio_session_s=args.audio_session,
            audio_video_session_s=args.audio_video_session,
            handle_validity_s=args.handle_validity,
            context_window_default=args.context_window,
            context_window_native_audio=args.context_window_native_audio,
            concurrent_sessions=args.concurrent_per_key,
        ),
        max_sessions=args.max_sessions,
        refuse_resume_while_open=not args.allow_resume_while_open,
        faults=FaultConfig(
            seed=args.seed,
            drop_probability=args.drop_probability,
            close_1011_probability=args.close_1011_probability,
            malformed_probability=args.malformed_probability,
            go_away_storm_interval_s=args.go_away_storm,
            silent_after_go_away=args.silent_after_go_away,
            latency_s=args.latency,
            jitter_s=args.jitter,
        ),
    )


async def serve(config: EmulatorConfig) -> None:
    """Serve until SIGINT/SIGTERM."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with open_emulator(config) as emu:
            print(f"listening on {emu.url}", flush=True)
            if config.ca_out:
                print(f"CA certificate written to {config.ca_out}", flush=True)
            async for _ in signals:
                break


def run(args: argparse.Namespace) -> int:
    if args.keyfile and not args.certfile:
        print("--keyfile needs --certfile", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        config = config_from(args)
    except ConfigError as exc:  # a value out of range (a probability above 1, a negative delay, ...)
        print(f"livemesh serve: {exc}", file=sys.stderr)
        return 2
    try:
        trio.run(serve, config)
    except OSError as exc:  # port in use, unreadable certificate, ...
        print(f"livemesh serve: {exc}", file=sys.stderr)
        return 1
    return 0
