"""One Live connection's protocol engine: setup, turns, audio, tools, resumption, limits.

The engine reads client messages in one task (decisions are made there, synchronously), runs
each model turn in its own task and cancel scope (an interruption cancels it; frames go through
the peer's bounded queue, so a cancelled turn never leaves half a frame), and keeps the
connection's deadlines in a timer task. All three live in a nursery owned by :meth:`run`.
"""

from __future__ import annotations

import json
import logging
import math
from collections import deque
from typing import TYPE_CHECKING, Any, Final

import attrs
import trio

from livemesh import wire
from livemesh.emulator import closes, model, reply
from livemesh.emulator.admission import admit, refuse_unknown_fields
from livemesh.emulator.context import Context, SessionRecord
from livemesh.emulator.families import HALF_CASCADE, ModelFamily
from livemesh.emulator.routing import Route
from livemesh.emulator.vad import EnergyVad, VadEvent, pcm_rate
from livemesh.emulator.wsio import ConnectionEnded, WebSocketPeer
from livemesh.errors import DecodeError

if TYPE_CHECKING:
    from livemesh.emulator.app import Emulator

log = logging.getLogger("livemesh.emulator")

# Messages sent unchanged in every turn, encoded once.
_NOT_RESUMABLE: Final = wire.encode_server(
    wire.ServerMessage(session_resumption_update=wire.SessionResumptionUpdate(new_handle="", resumable=False))
)
_INTERRUPTED: Final = wire.encode_server(
    wire.ServerMessage(server_content=wire.ServerContent(interrupted=True))
)
_TURN_COMPLETE: Final = wire.encode_server(
    wire.ServerMessage(server_content=wire.ServerContent(turn_complete=True))
)
_TURN_COMPLETE_IN_PROGRESS: Final = wire.encode_server(
    wire.ServerMessage(
        server_content=wire.ServerContent(
            turn_complete=True, interaction_status=wire.InteractionStatus.IN_PROGRESS
        )
    )
)
_GENERATION_COMPLETE: Final = wire.encode_server(
    wire.ServerMessage(server_content=wire.ServerContent(generation_complete=True))
)


@attrs.define(eq=False)
class _Turn:
    """A model turn in progress: its cancel scope and the BLOCKING calls it waits for."""

    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    call_ids: list[str] = attrs.Factory(list)
    answered: trio.Event = attrs.Factory(trio.Event)
    results: dict[str, str] = attrs.Factory(dict)


@attrs.define(eq=False)
class _Call:
    name: str
    blocking: bool
    turn: _Turn


@attrs.frozen
class _Speak:
    """A turn that just says ``text`` (a tool result, WHEN_IDLE or INTERRUPT scheduling)."""

    text: str


class LiveConnection:
    """The protocol engine of one accepted Live WebSocket (see the module docstring)."""

    def __init__(self, emu: Emulator, route: Route, peer: WebSocketPeer, number: int) -> None:
        self._emu = emu
        self._config = emu.config
        self.route = route
        self.peer = peer
        self.number = number
        self.record: SessionRecord | None = None
        self._context: Context | None = None
        self.key: str | None = None
        self._setup = wire.Setup()
        self._family: ModelFamily = HALF_CASCADE
        self._usage_sent = False  # the usage-only serverContent before the first model turn
        self._nursery: trio.Nursery | None = None
        self._turn: _Turn | None = None
        self._pending: dict[str, _Call] = {}
        self._cancelled: deque[str] = deque(maxlen=256)  # answering these is not an error
        self._idle: deque[str] = deque(maxlen=64)
        self._index = -1  # index of the last client message consumed on this connection (after setup)
        self._declared: frozenset[str] = frozenset()
        self._non_blocking: frozenset[str] = frozenset()
        self._audio_out = False
        self._resumption = False
        self._transparent = False
        self._vad: EnergyVad | None = None
        self._manual_active = False
        self._advertised_resumable = False  # the last resumption update we sent said resumable
        self._manual_ms = 0.0
        self._manual_bytes = 0
        self._silent = False
        self._video = False
        self._deadline_changed = trio.Event()
        self._started_at = 0.0
        self.sent_messages = 0

    @property
    def context(self) -> Context:
        """The context this connection was admitted with. Not ``record.context``: once a resume
        has restored the session on a new connection, this (closing) connection may still drain
        client messages it had already received, and they must not land in the new context
        (the client resends them there after the handle's index: they would count twice)."""
        assert self._context is not None
        return self._context

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Serve the connection until it ends; refusals close it with the service's code and text."""
        try:
            setup = await self._read_setup()
            await self._admit(setup)
        except closes.Refusal as refusal:
            await self.peer.close(refusal.code, refusal.reason)
            return
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._timers)
                await self._read_loop()
                nursery.cancel_scope.cancel()
        finally:
            self._end()

    async def _read_setup(self) -> wire.Setup:
        with trio.move_on_after(self._config.setup_timeout_s):
            raw = await self.peer.receive()
            return self._parse_setup(raw)
        raise closes.Refusal(closes.INTERNAL, closes.TEXT_DEADLINE)

    def _parse_setup(self, raw: bytes | str) -> wire.Setup:
        try:
            message = wire.decode_client(raw, max_size=self._config.max_frame_bytes)
        except DecodeError:
            raise closes.Refusal(closes.INVALID_ARGUMENT, closes.TEXT_INVALID_ARGUMENT) from None
        if message.setup is None:
            raise closes.Refusal(closes.INVALID_ARGUMENT, closes.TEXT_INVALID_ARGUMENT)
        return message.setup

    async def _admit(self, setup: wire.Setup) -> None:
        """Authenticate, validate, resume or create the session, then answer ``setupComplete``."""
        emu, config = self._emu, self._config
        handle = setup.session_resumption.handle if setup.session_resumption else None
        resume = bool(handle)
        admitted = admit(self.route, setup, config, emu.tokens)
        self.key, setup, name, token = admitted.key, admitted.setup, admitted.model, admitted.token
        self._family = admitted.family
        if resume:
            assert handle is not None
            record, snapshot = emu.store.resolve(handle, trio.current_time())
            if record.model != name:
                raise closes.Refusal(closes.INVALID_ARGUMENT, closes.TEXT_INVALID_ARGUMENT)
            old = record.connection
            if old is not None and config.refuse_resume_while_open:
                with trio.move_on_after(config.resume_grace_s):
                    await record.connection_closed.wait()
                if record.connection is not None:
                    raise closes.Refusal(closes.INTERNAL, closes.TEXT_INTERNAL)
            elif isinstance(old, LiveConnection):
                old.peer.abort()
                emu.store.detach(record, old, trio.current_time())
            record, snapshot = emu.store.resolve(handle, trio.current_time())
        emu.check_capacity(self.key)
        if resume:
            record.context = Context.restore(snapshot)
            record.resumptions += 1
        else:
            record = emu.store.create(name, self.key)
        if token is not None:
            emu.tokens.spend(token, resume=resume)
        self.record = record
        self._context = record.context
        emu.store.attach(record, self)
        emu.register(self)
        self.peer.on_end = self._end
        if self.peer.closing:
            self._end()
            return
        self._configure(setup)
        self._started_at = trio.current_time()
        await self._emit(
            wire.ServerMessage(setup_complete=wire.SetupComplete(session_id=record.id)), fault=False
        )
        if self._resumption:
            await self._send_handle()

    def _configure(self, setup: wire.Setup) -> None:
        self._setup = setup
        modalities = (setup.generation_config.response_modalities if setup.generation_config else None) or []
        self._audio_out = (modalities or [wire.Modality.AUDIO])[0] == wire.Modality.AUDIO
        declarations = [d for t in setup.tools or [] for d in t.function_declarations or []]
        self._declared = frozenset(d.name for d in declarations if d.name)
        default = self._family.default_behavior
        self._non_blocking = frozenset(
            d.name
            for d in declarations
            if d.name
            and (d.behavior if d.behavior not in (None, "UNSPECIFIED") else default)
            == wire.Behavior.NON_BLOCKING
        )
        self._resumption = setup.session_resumption is not None
        self._transparent = bool(setup.session_resumption and setup.session_resumption.transparent)
        activity = (
            setup.realtime_input_config.automatic_activity_detection if setup.realtime_input_config else None
        )
        self._vad = None if activity is not None and activity.disabled else EnergyVad.from_setup(activity)

    def _end(self) -> None:
        """Detach from the session as soon as the connection starts closing (idempotent)."""
        record = self.record
        if record is not None and record.connection is self:
            busy = self._turn is not None or any(call.blocking for call in self._pending.values())
            if busy and not self.peer.closed_by_server:
                record.disconnects_mid_turn += 1
            self._emu.store.detach(record, self, trio.current_time())
        self._emu.unregister(self)

    # ------------------------------------------------------------------ sending

    async def _emit(self, message: wire.ServerMessage | bytes, *, fault: bool = True) -> None:
        """Queue one server message (``bytes``: encoded already, e.g. a cached audio chunk)."""
        if self._silent:
            return
        self.sent_messages += 1
        data = message if isinstance(message, bytes) else wire.encode_server(message)
        await self.peer.send(data, faultable=fault)

    async def _content(self, **fields: Any) -> None:
        await self._emit(wire.ServerMessage(server_content=wire.ServerContent(**fields)))

    async def _send_handle(self, *, wait: bool = True) -> None:
        """A fresh handle naming the context as it is now (only while resumable). With
        ``wait=False`` (timers) it is skipped when the client is not reading."""
        if wait:
            # Snapshot and queue with no scheduling point between them (see wait_room): a handle
            # snapshotted before messages consumed meanwhile must not be queued after the pong
            # that answers a ping sent after them.
            await self.peer.wait_room()
        if self.record is None or self.record.connection is not self:
            return  # detached: a handle now would name another connection's context
        if not self._resumption or not self._resumable():
            return
        if not self.peer.has_room():
            return  # timers never wait on a client that stopped reading
        handle = self._emu.store.issue_handle(self.record)
        index = wire.Int64(self._index) if self._transparent else None
        update = wire.SessionResumptionUpdate(
            new_handle=handle, resumable=True, last_consumed_client_message_index=index
        )
        self._advertised_resumable = True
        await self._emit(wire.ServerMessage(session_resumption_update=update))

    async def _send_not_resumable(self) -> None:
        if self._resumption:
            self._advertised_resumable = False
            await self._emit(_NOT_RESUMABLE)

    async def _speech_started(self) -> None:
        """The user started (or may be starting) to speak: no handle until the VAD is idle again
        (see ``_resumable``), and
        the client is told so, as the service tells it during generation, rather than left to
        hold its input at a "quiet" point that never ends the utterance (then no handle comes)."""
        if self._advertised_resumable:
            await self._send_not_resumable()

    def _resumable(self) -> bool:
        # Not while the user is speaking either: the voice-activity state lives on the connection,
        # so a handle issued mid-utterance would resume with that utterance cut in two. The client
        # keeps the older handle and replays the utterance's audio, which rebuilds it whole.
        speaking = self._manual_active or (self._vad is not None and not self._vad.idle)
        return self._turn is None and not self._pending and not speaking

    def send_go_away(self, time_left: float) -> None:
        """Queue a goAway now; skipped if the client is not reading (it never waits)."""
        if self._silent:
            return
        message = wire.ServerMessage(go_away=wire.GoAway(time_left=wire.Duration(time_left)))
        if self.peer.try_send(wire.encode_server(message)):
            self.sent_messages += 1
        if self._config.faults.silent_after_go_away:
            self._silent = True

    # ------------------------------------------------------------------ timers

    def _deadline(self) -> float:
        limits = self._config.limits
        lifetime = limits.connection_lifetime_s
        if self._setup.context_window_compression is None:
            lifetime = min(lifetime, limits.session_budget_s(video=self._video))
        return self._started_at + lifetime

    async def _timers(self) -> None:
        config = self._config
        notice = config.limits.go_away_notice_s
        next_handle = trio.current_time() + config.resumption_update_interval_s
        storm = config.faults.go_away_storm_interval_s
        next_storm = trio.current_time() + storm if storm else math.inf
        warned = False
        while True:
            deadline = self._deadline()
            now = trio.current_time()
            if now >= deadline:
                await self.peer.close(closes.INTERNAL, closes.TEXT_DEADLINE)
                return
            if not warned and now >= deadline - notice:
                warned = True
                self.send_go_away(max(0.0, deadline - now))
                continue
            if now >= next_handle:
                next_handle = now + config.resumption_update_interval_s
                await self._send_handle(wait=False)
                continue
            if now >= next_storm:
                next_storm = now + (storm or math.inf)
                self.send_go_away(notice)
                continue
            wake = min(deadline if warned else deadline - notice, next_handle, next_storm)
            with trio.move_on_at(wake):
                await self._deadline_changed.wait()
                self._deadline_changed = trio.Event()

    # ------------------------------------------------------------------ receiving

    async def _read_loop(self) -> None:
        max_size = self._config.max_frame_bytes
        while True:
            try:
                raw = await self.peer.receive()
            except ConnectionEnded:
                return
            try:
                message = wire.decode_client(raw, max_size=max_size)
            except DecodeError:
                await self.peer.close(closes.INVALID_ARGUMENT, closes.TEXT_INVALID_ARGUMENT)
                return
            try:
                refuse_unknown_fields(message)
            except closes.Refusal as unknown:
                await self.peer.close(unknown.code, unknown.reason)
                return
            self._index += 1
            if message.realtime_input is not None:
                refusal = await self._on_realtime(message.realtime_input)
            elif message.client_content is not None:
                refusal = await self._on_client_content(message.client_content)
            elif message.tool_response is not None:
                refusal = await self._on_tool_response(message.tool_response)
            elif message.context_update is not None:
                self.context.messages += 1
                refusal = None
            else:
                refusal = closes.Refusal(closes.INVALID_ARGUMENT, closes.TEXT_INVALID_ARGUMENT)
            if refusal is not None:
                await self.peer.close(refusal.code, refusal.reason)
                return

    async def _on_client_content(self, content: wire.ClientContent) -> closes.Refusal | None:
        ctx = self.context
        last_user: str | None = None
        kept = False
        for turn in content.turns or []:
            if turn.role not in (None, "user"):
                continue
            text = "".join(part.text for part in turn.parts or [] if part.text)
            last_user = text
            if model.is_command(text, self._declared):
                continue
            ctx.add_turn(text, model.text_tokens(text))
            kept = True
        if kept or last_user is None:
            ctx.messages += 1  # a message carrying only commands is a query, not content
        if kept:
            await self._fit_window()
        await self._interrupt()
        if content.turn_complete:
            self._begin(model.classify(last_user or "", self._declared))
        return None

    async def _on_realtime(self, rt: wire.RealtimeInput) -> closes.Refusal | None:
        ctx = self.context
        if rt.media_chunks is not None and self._family.refuse_media_chunks:
            return closes.Refusal(closes.INVALID_ARGUMENT, closes.TEXT_INVALID_ARGUMENT)
        blobs = list(rt.media_chunks or [])
        if rt.audio is not None:
            blobs.append(rt.audio)
        if rt.video is not None:
            blobs.append(rt.video)
        if (
            blobs
            and self._config.abort_input_during_blocking_call
            and any(c.blocking for c in self._pending.values())
        ):
            return closes.Refusal(closes.POLICY, closes.TEXT_ABORTED)  # media while a call waits
        if rt.text is not None:
            command = model.classify(rt.text, self._declared)
            if isinstance(command, model.Say):
                ctx.messages += 1
                ctx.add_turn(rt.text, model.text_tokens(rt.text))
                await self._fit_window()
            await self._interrupt()
            self._begin(command)
            return None
        ctx.messages += 1
        for blob in blobs:
            mime = (blob.mime_type or "").lower()
            if mime.startswith("audio/"):
                ctx.audio_bytes += len(blob.data)
                ctx.audio_chunks += 1
                await self._on_audio(blob.data, pcm_rate(mime))
            else:
                ctx.video_frames += 1
                if not self._video:
                    self._video = True
                    self._deadline_changed.set()
        if rt.activity_start is not None and self._vad is None:
            self._manual_active = True
            self._manual_ms = 0.0
            self._manual_bytes = 0
            await self._speech_started()
            await self._barge_in()
        if rt.activity_end is not None and self._vad is None and self._manual_active:
            self._manual_active = False
            await self._audio_turn(VadEvent("end", round(self._manual_ms / 1000, 3), self._manual_bytes))
        if rt.audio_stream_end and self._vad is not None:
            event = self._vad.flush()
            if event is not None:
                await self._signal_vad("end")
                await self._audio_turn(event)
        return None

    async def _on_audio(self, data: bytes, rate: int) -> None:
        if self._vad is None:
            if self._manual_active:
                self._manual_bytes += len(data)
                self._manual_ms += 1000 * (len(data) // 2) / rate
            return
        for event in self._vad.feed(data, rate):
            await self._signal_vad(event.kind)
            if event.kind == "start":
                await self._speech_started()
                await self._barge_in()
            else:
                await self._audio_turn(event)
        if not self._vad.idle:
            await self._speech_started()  # loud audio, speech maybe starting: no handle either

    async def _signal_vad(self, kind: str) -> None:
        """With ``explicitVadSignal``: ``voiceActivityDetectionSignal`` and ``voiceActivity``."""
        if not self._setup.explicit_vad_signal:
            return
        start = kind == "start"
        signal = wire.VoiceActivityDetectionSignal(
            vad_signal_type="VAD_SIGNAL_TYPE_SOS" if start else "VAD_SIGNAL_TYPE_EOS"
        )
        await self._emit(wire.ServerMessage(voice_activity_detection_signal=signal))
        activity = wire.VoiceActivity(type="ACTIVITY_START" if start else "ACTIVITY_END")
        await self._emit(wire.ServerMessage(voice_activity=activity))

    async def _barge_in(self) -> None:
        config = self._setup.realtime_input_config
        if config is not None and config.activity_handling == wire.ActivityHandling.NO_INTERRUPTION:
            return
        await self._interrupt()

    async def _audio_turn(self, event: VadEvent) -> None:
        text = model.audio_turn_text(event.duration_s, event.nbytes)
        ctx = self.context
        ctx.add_turn(text, max(1, round(event.duration_s * model.AUDIO_TOKENS_PER_S)))
        await self._fit_window()
        if self._setup.input_audio_transcription is not None:
            await self._content(input_transcription=wire.Transcription(text=text, finished=True))
        await self._interrupt()
        self._begin(model.Say(text))

    async def _on_tool_response(self, response: wire.ToolResponse) -> closes.Refusal | None:
        ctx = self.context
        ctx.messages += 1
        for answer in response.function_responses or []:
            ctx.tool_responses += 1
            call_id = answer.id
            if call_id is None and answer.name:
                matches = [cid for cid, call in self._pending.items() if call.name == answer.name]
                call_id = matches[0] if len(matches) == 1 else None
            if call_id is not None and call_id in self._cancelled:
                self._cancelled.remove(call_id)
                continue
            call = self._pending.pop(call_id, None) if call_id is not None else None
            if call is None or call_id is None:
                ctx.unknown_tool_responses += 1
                continue
            text = model.tool_result_text(call.name, answer.response)
            if call.blocking:
                call.turn.results[call_id] = text
                if all(cid in call.turn.results for cid in call.turn.call_ids):
                    call.turn.answered.set()
                continue
            scheduling = answer.scheduling or wire.Scheduling.WHEN_IDLE
            if scheduling == wire.Scheduling.SILENT:
                ctx.pending_results.append(text)
            elif scheduling == wire.Scheduling.INTERRUPT or self._turn is None:
                await self._interrupt()
                self._begin(_Speak(text))
            else:
                self._idle.append(text)
        if self._resumable():
            await self._send_handle()
        return None

    # ------------------------------------------------------------------ turns

    def _begin(self, command: model.Command | _Speak) -> None:
        """Start a model turn now (the caller has interrupted any turn in progress)."""
        assert self._nursery is not None
        turn = _Turn()
        self._turn = turn
        self._nursery.start_soon(self._run_turn, turn, command)

    async def _interrupt(self) -> None:
        """Cancel the turn in progress: ``interrupted``, cancelled calls, ``turnComplete``."""
        turn = self._turn
        if turn is None:
            return
        self._turn = None
        turn.scope.cancel()
        cancelled = [cid for cid in turn.call_ids if self._pending.pop(cid, None) is not None]
        self._cancelled.extend(cancelled)
        await self._emit(_INTERRUPTED)
        if cancelled:
            await self._emit(
                wire.ServerMessage(tool_call_cancellation=wire.ToolCallCancellation(ids=cancelled))
            )
        # The input that interrupted starts the next model turn: the interaction goes on.
        await self._emit(_TURN_COMPLETE_IN_PROGRESS if self._family.interaction_status else _TURN_COMPLETE)

    async def _run_turn(self, turn: _Turn, command: model.Command | _Speak) -> None:
        with turn.scope:
            await self._send_not_resumable()
            if self._family.usage_before_first_turn and not self._usage_sent:
                self._usage_sent = True
                usage = reply.usage(
                    self.context, 0, wire.Modality.AUDIO if self._audio_out else wire.Modality.TEXT
                )
                await self._emit(
                    wire.ServerMessage(server_content=wire.ServerContent(), usage_metadata=usage)
                )
            text = await self._compose(turn, command)
            await self._speak(text)
            if self._turn is turn:
                self._turn = None
        if self._turn is None and not turn.scope.cancelled_caught:
            if self._idle:
                self._begin(_Speak(self._idle.popleft()))
            else:
                await self._send_handle()

    async def _compose(self, turn: _Turn, command: model.Command | _Speak) -> str:
        ctx = self.context
        if isinstance(command, _Speak):
            return command.text
        if isinstance(command, model.Recall):
            return json.dumps(ctx.texts)
        if isinstance(command, model.Stats):
            return json.dumps(ctx.snapshot().as_json())
        if isinstance(command, model.Call):
            if len(self._pending) >= self._config.max_pending_calls:
                await self.peer.close(closes.INTERNAL, closes.TEXT_INTERNAL)
                return ""
            call_id = self._emu.next_call_id()
            blocking = command.name not in self._non_blocking
            self._pending[call_id] = _Call(command.name, blocking, turn)
            turn.call_ids.append(call_id)
            if self._config.stream_function_args:
                for piece in reply.streamed_call(call_id, command.name, command.args):
                    await self._emit(wire.ServerMessage(tool_call=wire.ToolCall(function_calls=[piece])))
            else:
                call = wire.FunctionCall(name=command.name, args=command.args, id=call_id)
                await self._emit(wire.ServerMessage(tool_call=wire.ToolCall(function_calls=[call])))
            if not blocking:
                return f"Calling {command.name}."
            await turn.answered.wait()
            return " ".join(turn.results[cid] for cid in turn.call_ids)
        prefix = " ".join(ctx.pending_results)
        ctx.pending_results.clear()
        said = model.say_reply(command.text)
        return f"{prefix} {said}" if prefix else said

    async def _speak(self, text: str) -> None:
        """Stream the answer with the configured timing, then generationComplete, turnComplete."""
        config = self._config
        answer = reply.render(
            text,
            audio=self._audio_out,
            transcribe=self._setup.output_audio_transcription is not None,
            count=config.chunks_per_reply,
            chars_per_s=config.speech_chars_per_s,
            combined=self._family.combined_content,
        )
        if config.first_chunk_delay_s:
            await trio.sleep(config.first_chunk_delay_s)
        for index, step in enumerate(answer.steps):
            if index and config.chunk_interval_s:
                await trio.sleep(config.chunk_interval_s)
            for message in step:
                await self._emit(message)
        await self._emit(_GENERATION_COMPLETE)
        self.context.add_reply_tokens(answer.response_tokens)
        usage = reply.usage(self.context, answer.response_tokens, answer.modality)
        status = None
        if self._family.interaction_status:
            # IDLE ends the interaction (the SDK's receive() stops there); another model turn follows
            # while a call this turn made is unanswered or a result waits to be spoken. The service
            # documents only IDLE's meaning: the rest is the emulator's reading.
            follows = bool(self._pending or self._idle)
            status = wire.InteractionStatus.IN_PROGRESS if follows else wire.InteractionStatus.IDLE
        done = wire.ServerContent(turn_complete=True, interaction_status=status)
        await self._emit(wire.ServerMessage(server_content=done, usage_metadata=usage))
        await self._fit_window(compress=False)

    async def _fit_window(self, *, compress: bool = True) -> None:
        """Keep the context inside its window: with ``contextWindowCompression``, the sliding
        window (at the start of a user turn: trigger default 80% of the window, target default
        trigger/2); without it, a context past the window ends the session with 1007."""
        assert self.record is not None
        limits = self._config.limits
        native = self._family.native_audio
        window = limits.context_window_native_audio if native else limits.context_window_default
        compression = self._setup.context_window_compression
        if compression is not None:
            if compress:
                trigger = compression.trigger_tokens or int(window * 0.8)
                sliding = compression.sliding_window
                target = (sliding.target_tokens if sliding else None) or trigger // 2
                self.context.compress(trigger, target)
        elif (tokens := self.context.tokens()) > window:
            await self.peer.close(closes.INVALID_ARGUMENT, closes.context_window_exceeded(tokens, window))
