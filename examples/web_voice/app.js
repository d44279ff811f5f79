// The voice page: microphone -> 16 kHz PCM (pcm-recorder.js) -> a WebSocket; the model's
// 24 kHz PCM back -> scheduled AudioBufferSources; "interrupted" stops them at once.
//
// Two ways to reach the model, one player and one recorder for both:
// * relay (default): the backend's /ws/voice, binary PCM frames both ways plus JSON events;
//   the backend holds the API key and a pooled livemesh session.
// * direct: the page asks the backend for a one-use ephemeral token (POST /api/token) and
//   speaks the Live API's own JSON protocol to the service (or emulator) itself.
//
// window.voice holds counters (what was sent, received and actually played), for the curious
// and for the browser test.

const stats = {
  mode: null,
  ready: false,
  sentBytes: 0,
  sentChunks: 0,
  receivedBytes: 0,
  receivedChunks: 0,
  playedSeconds: 0, // reply audio that played to its end (not cut by an interruption)
  interruptions: 0,
  stoppedSources: 0, // reply chunks cut off (playing or queued) when the model was interrupted
  turns: 0,
  stopped: false, // Stop was pressed (the connection closing now is no error)
  ended: false, // ... and everything recorded was sent, the connection closed
  errors: [],
};
window.voice = stats;

const OUTPUT_RATE = 24000;
const $ = (id) => document.getElementById(id);

function log(text, kind) {
  const line = document.createElement("p");
  line.className = kind;
  line.textContent = text;
  $("log").append(line);
  return line;
}

function status(text) {
  $("status").textContent = text;
}

// ----------------------------------------------------------------------------- playing

class Player {
  constructor(context) {
    this.context = context;
    this.next = 0; // when the next chunk starts (context time)
    this.sources = new Set(); // scheduled or playing
  }

  play(buffer) {
    const pcm = new Int16Array(buffer);
    const samples = new Float32Array(pcm.length);
    for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 0x8000;
    const audio = this.context.createBuffer(1, samples.length, OUTPUT_RATE); // resampled by the browser
    audio.copyToChannel(samples, 0);
    const source = this.context.createBufferSource();
    source.buffer = audio;
    source.connect(this.context.destination);
    const start = Math.max(this.next, this.context.currentTime + 0.02);
    source.start(start);
    this.next = start + audio.duration;
    this.sources.add(source);
    source.onended = () => {
      if (this.sources.delete(source)) stats.playedSeconds += audio.duration; // not stopped: played
    };
  }

  stop() {
    stats.stoppedSources += this.sources.size;
    const cut = [...this.sources];
    this.sources.clear(); // first: their onended must not count them as played
    for (const source of cut) source.stop();
    this.next = 0;
  }
}

// ----------------------------------------------------------------------------- the two transports

function opened(ws) {
  return new Promise((resolve, reject) => {
    ws.addEventListener("open", resolve, { once: true });
    ws.addEventListener("close", (e) => reject(new Error(`closed ${e.code} ${e.reason}`)), { once: true });
  });
}

class RelayTransport {
  constructor(on) {
    this.on = on;
  }

  async open() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.ws = new WebSocket(`${scheme}://${location.host}/ws/voice`);
    this.ws.binaryType = "arraybuffer";
    const ready = new Promise((resolve) => (this.ready = resolve));
    this.ws.onmessage = (e) => this.message(e.data);
    this.ws.onclose = (e) => this.on.closed(e.code, e.reason);
    await opened(this.ws);
    await ready;
  }

  message(data) {
    if (data instanceof ArrayBuffer) return this.on.audio(data);
    const event = JSON.parse(data);
    if (event.type === "ready") this.ready();
    else if (event.type === "interrupted") this.on.interrupted();
    else if (event.type === "input_transcript") this.on.heard(event.text);
    else if (event.type === "output_transcript") this.on.spoken(event.text);
    else if (event.type === "turn_complete") this.on.turnComplete();
    else if (event.type === "error") this.on.error(event.message);
  }

  sendAudio(buffer) {
    this.ws.send(buffer);
  }

  end() {
    this.ws.send(JSON.stringify({ type: "stop" })); // the backend sends audioStreamEnd
    this.ws.close(1000);
  }
}

function toBase64(buffer) {
  const bytes = new Uint8Array(buffer);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

function fromBase64(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes.buffer;
}

class DirectTransport {
  constructor(on) {
    this.on = on;
  }

  async open() {
    const reply = await fetch("/api/token", { method: "POST" });
    if (!reply.ok) throw new Error(`no token: HTTP ${reply.status}`);
    const { token, url, model } = await reply.json();
    this.ws = new WebSocket(`${url}?access_token=${encodeURIComponent(token)}`);
    this.ws.binaryType = "arraybuffer";
    const ready = new Promise((resolve) => (this.ready = resolve));
    this.ws.onmessage = (e) => this.message(e.data);
    this.ws.onclose = (e) => this.on.closed(e.code, e.reason);
    await opened(this.ws);
    this.ws.send(JSON.stringify({ setup: { model } })); // the token's locked setup supplies the rest
    await ready;
  }

  message(data) {
    const text = typeof data === "string" ? data : new TextDecoder().decode(data);
    const message = JSON.parse(text);
    if (message.setupComplete) return this.ready();
    const content = message.serverContent;
    if (!content) return;
    if (content.interrupted) this.on.interrupted();
    for (const part of (content.modelTurn && content.modelTurn.parts) || []) {
      const blob = part.inlineData;
      if (blob && blob.data && (blob.mimeType || "").startsWith("audio/pcm")) this.on.audio(fromBase64(blob.data));
    }
    if (content.inputTranscription && content.inputTranscription.text) this.on.heard(content.inputTranscription.text);
    if (content.outputTranscription && content.outputTranscription.text) this.on.spoken(content.outputTranscription.text);
    if (content.turnComplete) this.on.turnComplete();
  }

  sendAudio(buffer) {
    const audio = { data: toBase64(buffer), mimeType: "audio/pcm;rate=16000" };
    this.ws.send(JSON.stringify({ realtimeInput: { audio } }));
  }

  end() {
    this.ws.send(JSON.stringify({ realtimeInput: { audioStreamEnd: true } }));
    this.ws.close(1000);
  }
}

// ----------------------------------------------------------------------------- the conversation

let context, stream, source, recorder, transport, player, speaking;

const handlers = {
  audio(buffer) {
    stats.receivedBytes += buffer.byteLength;
    stats.receivedChunks += 1;
    player.play(buffer);
  },
  interrupted() {
    stats.interruptions += 1;
    player.stop(); // barge-in: the user spoke over the model
    log("(interrupted)", "event");
    speaking = null;
  },
  heard(text) {
    log(`you: ${text}`, "user");
  },
  spoken(text) {
    if (!speaking) speaking = log("model: ", "model");
    speaking.textContent += text;
  },
  turnComplete() {
    stats.turns += 1;
    speaking = null;
  },
  error(message) {
    stats.errors.push(message);
    status(`error: ${message}`);
  },
  closed(code, reason) {
    if (!stats.stopped) {
      stats.errors.push(`connection closed: ${code} ${reason}`);
      status(`connection closed (${code}${reason ? ": " + reason : ""})`);
    }
  },
};

async function start() {
  $("start").disabled = true;
  stats.mode = document.querySelector("input[name=mode]:checked").value;
  try {
    context = new AudioContext();
    await context.resume();
    player = new Player(context);
    transport = stats.mode === "direct" ? new DirectTransport(handlers) : new RelayTransport(handlers);
    status("connecting...");
    await transport.open();
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    await context.audioWorklet.addModule("/static/pcm-recorder.js");
    source = context.createMediaStreamSource(stream);
    recorder = new AudioWorkletNode(context, "pcm-recorder", {
      processorOptions: { targetRate: 16000, chunkMs: 40 },
    });
    recorder.port.onmessage = (e) => {
      if (e.data === "flushed") return recorder.onflushed();
      transport.sendAudio(e.data);
      stats.sentBytes += e.data.byteLength;
      stats.sentChunks += 1;
    };
    source.connect(recorder);
    const silent = context.createGain(); // the recorder must reach the destination to be pulled
    silent.gain.value = 0;
    recorder.connect(silent).connect(context.destination);
    stats.ready = true;
    $("stop").disabled = false;
    status(`listening (${stats.mode === "direct" ? "direct, ephemeral token" : "through the backend"})`);
  } catch (error) {
    stats.errors.push(String(error));
    status(`could not start: ${error}`);
    $("start").disabled = false;
  }
}

async function stop() {
  $("stop").disabled = true;
  stats.stopped = true;
  for (const track of stream.getTracks()) track.stop();
  source.disconnect();
  await new Promise((resolve) => {
    recorder.onflushed = resolve;
    recorder.port.postMessage("flush"); // the last partial chunk, then "flushed"
  });
  transport.end();
  player.stop();
  stats.ended = true;
  status("stopped");
}

$("start").onclick = start;
$("stop").onclick = stop;
