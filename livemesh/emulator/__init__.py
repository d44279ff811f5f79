"""The livemesh emulator: a protocol-faithful local Live API server (``python -m livemesh serve``).

See CONTRACT below; it is what the session actor, the pool and users' tests code against.

Modules, one job each: ``app`` (listener, ``open_emulator``, the ``Emulator`` handle and its
controls), ``wsio`` (bytes: h11 for HTTP, websockets' sans-I/O protocol for WebSocket framing,
bounded queues, faults per frame), ``routing`` (paths and credentials), ``admission`` (auth,
model and setup checks), ``live`` (one connection's protocol engine: turns, audio, tools,
resumption, timers), ``model`` (the scripted model's words), ``reply`` (answers as server
messages, usage), ``vad`` (energy VAD in audio time), ``context`` (session contexts, snapshots,
the handle store), ``tokens`` (ephemeral tokens), ``rest`` (model listing, token issuing),
``faults`` (seeded fault plans), ``closes`` (the service's close codes and texts), ``tls``
(certificates), ``families`` (how each model family behaves), ``config`` (``EmulatorConfig``,
``FaultConfig``), ``cli`` (``python -m livemesh serve``).

Server technology: h11 + websockets' ``ServerProtocol`` (both sans-IO, both already dependencies:
httpx and the sans-I/O client engine) on trio's listeners; websockets replaced wsproto for its
3x cheaper frame parsing (``wsio``). Chosen over hypercorn's ASGI worker because the emulator
must misbehave at the byte level (drop TCP without a close frame, send garbled frames), which
ASGI cannot express (an app error becomes a 1011 close), and because it spends less CPU per
message (``bench/emulator_throughput.py``).

CONTRACT
========

In process::

    from livemesh.emulator import open_emulator, EmulatorConfig, FaultConfig
    async with open_emulator(EmulatorConfig(...)) as emu:   # serves in a nursery inside the block
        emu.url           # "ws://127.0.0.1:PORT" ("wss://" with TLS); append the Live path below
        emu.http_url      # "http://127.0.0.1:PORT" ("https://"): REST on the same port
        emu.ca_pem        # the throwaway CA (PEM bytes) with EmulatorConfig(tls=True), else None
        emu.stats(session_id) -> SessionStats   # per resumable session, across its connections
        await emu.send_go_away(time_left=1.0, session_id=None)   # None = every live connection
        await emu.drop(session_id=None, close_code=None)  # None = abrupt (no close frame: 1006)
        await emu.send_raw(data, session_id=None)         # one binary frame, as is
        await emu.send_malformed(session_id=None)         # a truncated-JSON frame
        emu.live_connections()   # live connections past setup, for leak checks
        emu.open_sockets()       # accepted TCP connections still open (HTTP or WebSocket)
        await emu.wait_idle()    # until no live connection and no open socket remains
        emu.session_ids()

Paths (repeated slashes tolerated), served over ws/wss on one port with REST:

* ``/ws/google.ai.generativelanguage.{v1,v1beta,v1alpha}.GenerativeService.BidiGenerateContent``
  key in ``?key=`` or ``x-goog-api-key`` (``api_keys=None`` accepts any non-empty key);
* ``...GenerativeService.BidiGenerateContentConstrained``: ephemeral token in
  ``Authorization: Token auth_tokens/...``, ``?access_token=`` or ``x-goog-api-key``;
* ``/ws/google.cloud.aiplatform.{v1,v1beta1}.LlmBidiService/BidiGenerateContent`` (Vertex):
  ``Authorization: Bearer ...`` (``bearer_tokens=None`` accepts any), or an API key in
  ``x-goog-api-key``/``?key=`` (Vertex express mode, checked against ``api_keys``).
* REST: ``GET /{v1,v1beta,v1alpha}/models[/NAME]``, ``POST /v1alpha/auth_tokens``.

Protocol: server frames are binary frames of camelCase JSON (``wire.encode_server``). Setup first,
answered by ``setupComplete{sessionId}``; ``sessionId`` is the resumable session's id, stable
across resumptions. Refusals accept the upgrade, read the setup, then close:

* 1007 "Request contains an invalid argument.": bad JSON, a message before/instead of setup,
  TEXT+AUDIO (or a modality the model's family does not answer in), ``transparent`` off Vertex,
  a resume naming another model, a second setup, and what the family refuses (below);
* 1007 ``Invalid JSON payload received. Unknown name "X" at 'setup.generation_config': Cannot
  find field.``: a member the API does not model, at any depth of any client message (as
  Google's JSON parser refuses unknown names);
* 1008 "models/X is not found for API version V, or is not supported for bidiGenerateContent";
  1008 "Method doesn't allow unregistered callers ..." (no key), "API key not valid. ..." (bad
  key), "Request had invalid authentication credentials." (bad/used/expired token), "Requested
  entity was not found." (unknown or expired resumption handle);
* 1011 "Internal error occurred." (resume while the old connection is open, fault closes),
  "Deadline expired before operation could complete." (connection lifetime or session budget),
  "The service is currently unavailable." (``max_sessions``), and the quota text
  "RESOURCE_EXHAUSTED: You exceeded your current quota (concurrent sessions). Retry later."
  (``max_concurrent_per_key`` or ``limits.concurrent_sessions``);
* 1008 "The operation was aborted." on realtime audio/video while a BLOCKING call is pending, only with
  ``abort_input_during_blocking_call=True`` (reported behaviour).

Default response modality is AUDIO (as the service); one modality only.

Model families (``EmulatorConfig.families``; :mod:`livemesh.emulator.families` cites a source for
each behaviour). ``models.list`` returns every Live model with its family's
``supportedGenerationMethods``, current models first.

* ``gemini-3.8-live`` (stable): AUDIO answers only (text through ``outputTranscription``);
  functions declared without ``behavior`` are NON_BLOCKING; ``clientContent`` is taken for the
  whole session; every ``turnComplete`` carries ``interactionStatus``: IDLE, or IN_PROGRESS when
  another model turn follows (an interrupted turn; an unanswered call's result or a queued one
  still to be spoken); audio and its transcription travel in one ``serverContent``; a
  ``serverContent`` carrying only ``usageMetadata`` precedes the connection's first model turn;
  1007 for ``mediaChunks``, ``thinkingLevel``, ``proactiveAudio: false`` and
  ``enableAffectiveDialog``.
* ``gemini-3.1-flash-live-preview``: BLOCKING calls (no NON_BLOCKING yet), audio and its
  transcription in one ``serverContent``, a usage-only ``serverContent`` first, 1007 for
  ``mediaChunks``, no ``interactionStatus``.
* the 2.5 native-audio previews: BLOCKING calls, one kind of content per message, no
  ``interactionStatus``, ``mediaChunks`` accepted, the native-audio context window; TEXT answers
  too (the service answers these models in AUDIO only).
* the older text-capable models (``gemini-live-2.5-flash-preview``, ``gemini-2.0-flash-live-001``
  ...): TEXT or AUDIO, BLOCKING calls, one kind of content per message.
* any other name in ``live_models``: the 2.5 family if it contains ``native-audio``, else the older
  one.

With ``stream_function_args=True`` (``--stream-function-args``) a call's arguments stream: one
``toolCall`` per argument leaf whose call has ``partialArgs`` (``jsonPath`` like ``$.city``; a
string in two pieces, the first with ``willContinue``) and ``willContinue: true``, then one with
``willContinue: false`` and no arguments; the client assembles ``args``.

Scripted model (words are a whole user text turn, case-insensitive, surrounding space ignored):

* any other text T → ``"You said: T"`` in ``chunks_per_reply`` ``modelTurn`` chunks (1: the reply whole)
  (``first_chunk_delay_s`` before the first, ``chunk_interval_s`` between), then
  ``generationComplete``, then ``turnComplete`` with ``usageMetadata``;
* ``recall`` → ``json.dumps(texts)``: the user turn texts in the context, in order (commands
  excluded; an audio turn is its transcription ``"[audio 1.20s, 38400 bytes]"``);
* ``stats`` → ``json.dumps({"messages", "audio_bytes", "audio_chunks", "video_frames", "turns",
  "texts", "tool_responses", "unknown_tool_responses", "tokens", "compressions"})``;
  ``emu.stats(id)`` gives the same numbers.
  ``messages`` counts every client message after setup consumed into this context
  (clientContent, realtimeInput of any kind, toolResponse) EXCEPT messages that only carry the
  commands ``recall``/``stats``/``call``, which are queries, not content. ``turns`` counts user
  turns (text turns and audio turns ended by VAD, activityEnd or audioStreamEnd);
* ``call NAME {json args}`` with NAME a declared function → ``toolCall{functionCalls:[{id,name,
  args}]}`` (ids ``function-call-N``, unique per emulator). BLOCKING (the default but on
  gemini-3.8-live): the turn waits
  for the response, then says ``"NAME returned {json response, sorted keys}"``. NON_BLOCKING
  (declaration ``behavior``): the turn says ``"Calling NAME."`` at once; the response is
  scheduled: INTERRUPT (interrupts and speaks the result now), WHEN_IDLE (default; after the
  current turn), SILENT (folded into the next ``You said`` answer as a prefix
  ``"NAME returned {...} You said: T"``). Interrupting a turn (new clientContent, realtime text,
  barge-in speech, activityStart) sends ``interrupted``, ``toolCallCancellation{ids}`` for the
  calls of that turn still pending, then ``turnComplete`` (no ``generationComplete``).
  A response to an unknown or already answered id counts in ``unknown_tool_responses``.
* AUDIO modality: the same text as a 440 Hz 24 kHz 16-bit PCM tone of
  ``len(text)/speech_chars_per_s`` seconds in ``chunks_per_reply`` chunks
  (``audio/pcm;rate=24000``), each followed by (on gemini-3.8-live: carrying) an
  ``outputTranscription`` chunk of the text if ``outputAudioTranscription`` was set up.
* Audio in (``audio/pcm;rate=N``, default 16 kHz): energy VAD in audio time (peak >= 800 per
  20 ms frame with high start sensitivity, 2400 with low; end after ``silenceDurationMs``, default
  500 ms, 1000 ms with low end sensitivity). Speech start barges in (unless NO_INTERRUPTION);
  speech end, ``audioStreamEnd`` (auto VAD) or ``activityEnd`` (VAD disabled; audio outside
  activityStart/End is counted but not a turn) ends an audio turn: ``inputTranscription``
  ``"[audio D.DDs, N bytes]"`` (if set up), then the answer "You said: [audio ...]".
  activityStart/End are ignored while automatic VAD is on, audioStreamEnd while it is off.
  With ``explicitVadSignal`` the VAD's start/end are also sent as
  ``voiceActivityDetectionSignal{vadSignalType: VAD_SIGNAL_TYPE_SOS|EOS}`` and
  ``voiceActivity{type: ACTIVITY_START|ACTIVITY_END}``.
  Speech in progress when a connection ends is not a turn (its bytes are counted).

Resumption (only if the setup has ``sessionResumption``): each ``sessionResumptionUpdate.newHandle``
names a SNAPSHOT of the session context when it was issued. Resuming from H restores exactly that
snapshot: client messages consumed after H was issued on the old connection are not in the
resumed context (a client must replay them). Handles are issued right after ``setupComplete``,
after every completed turn, after a tool response leaves nothing pending, and every
``resumption_update_interval_s`` while resumable. ``{newHandle:"", resumable:false}`` is sent
at the start of every model turn; no handle is issued while a turn runs, a call is pending or
the user is speaking (VAD or manual activity open: voice-activity state lives on the connection,
so a mid-utterance handle would resume with the utterance cut in two; this is the emulator's
choice, the real service's behaviour there is not documented).
On the Vertex path with ``transparent: true`` every update carries
``lastConsumedClientMessageIndex``: the 0-based index, among client messages sent on THIS
connection after its setup (setup not counted, every later message counted, commands too), of
the last message the snapshot includes (-1: none yet). Replay the messages after it.
Handles stay valid while the session has a live connection and ``handle_validity_s`` after its
last connection ended; the newest ``max_handles_per_session`` handles are kept. Resuming while
the session's previous connection is still open waits ``resume_grace_s`` for it to close, then
is refused with 1011 (``refuse_resume_while_open``; False aborts the old connection instead).
A resume may change any config but the model.

Limits: each connection gets ``goAway{timeLeft}`` ``go_away_notice_s`` before its deadline,
then closes 1011 "Deadline expired before operation could complete.". The deadline is
``connection_lifetime_s`` after setup, or, without ``contextWindowCompression``, the session
budget if sooner (``audio_session_s``; ``audio_video_session_s`` once video was received),
counted per connection (a resumed connection starts a new budget; a simplification).
Setup must arrive within ``setup_timeout_s`` (else 1011 deadline). A client message larger than
``max_frame_bytes`` closes 1009 "Message too big."; broken WebSocket framing closes 1002.

Context window: each user turn (with its answer) is an entry of estimated tokens (text: 4
characters a token; audio turns: 25 tokens a second); the window is
``limits.context_window_native_audio`` for native-audio families (gemini-3.8-live and the 2.5
previews), else ``context_window_default``. With ``contextWindowCompression`` the sliding window cuts whole
user turns, oldest first, at the start of a user turn once past ``triggerTokens`` (default 80%
of the window) down to ``slidingWindow.targetTokens`` (default trigger/2); ``recall`` shows what
is left (``stats`` keeps what was cut in ``compressed_texts``). Without it, a context past the
window ends the session with 1007 "The input token count (N) exceeds the maximum number of tokens
allowed (M)." (the Live API documents neither the close nor its text; this is the Gemini API's
wording for a request over the token limit), which livemesh raises as ``ContextWindowError``.

``SessionStats`` (``emu.stats``): ``messages, audio_bytes, audio_chunks, video_frames, turns,
texts, tool_responses, unknown_tool_responses, turn_tokens, compressions, compressed_texts`` (the context; the
``stats`` command reports the same, with ``tokens`` = sum of ``turn_tokens``) plus
``connections, resumptions, handles_issued`` and ``disconnects_mid_turn``: connections the
CLIENT closed or dropped while a model turn or a BLOCKING call was in progress (rotations that
did not wait for a quiet point).

Faults (``FaultConfig``, seeded per connection): abrupt drops, 1011 closes, malformed frames,
latency/jitter per server message; goAway storms; silence after goAway.
``EmulatorConfig.faults_by_key`` applies a different ``FaultConfig`` to connections made with
one credential, so one session of many misbehaves.

Not emulated: real speech recognition or synthesis (a tone; transcripts are duration and size),
real token counting (estimated), google_search/code execution/url_context tools (accepted,
never called), video understanding (frames are counted), proactivity, affective dialog and
thinking (accepted where the family takes them, ignored), translation, transcription settings
(language codes, diarization, word timestamps), interim transcripts, avatars, safety settings,
history config (accepted, ignored), turnCoverage, ``contextUpdate`` (counted, otherwise ignored),
pending tool calls across a resumption (a handle is never issued while one is pending),
permessage-deflate, HTTP/2, REST beyond model listing and ephemeral tokens.
"""

from livemesh.emulator.app import Emulator as Emulator
from livemesh.emulator.app import open_emulator as open_emulator
from livemesh.emulator.config import EmulatorConfig as EmulatorConfig
from livemesh.emulator.config import FaultConfig as FaultConfig
from livemesh.emulator.context import SessionStats as SessionStats
from livemesh.limits import ServiceLimits as ServiceLimits

__all__ = ["Emulator", "EmulatorConfig", "FaultConfig", "ServiceLimits", "SessionStats", "open_emulator"]
