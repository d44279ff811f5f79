// AudioWorklet: the microphone (Float32 at the context's rate, 48 kHz in most browsers) as
// 16 kHz 16-bit little-endian mono PCM, posted in fixed-size chunks (40 ms by default).
//
// Resampling is a box filter: each output sample is the mean of the input samples that fall in
// its 1/16000 s window (a fractional window when the rates are not multiples). Crude next to a
// polyphase filter, but it removes most of what would alias into speech frequencies, and costs
// one add per input sample on the audio thread.

class PcmRecorder extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = options.processorOptions || {};
    this.targetRate = opts.targetRate || 16000;
    this.chunkSamples = Math.round((this.targetRate * (opts.chunkMs || 40)) / 1000);
    this.step = sampleRate / this.targetRate; // input samples per output sample
    this.position = 0; // input samples into the current output window
    this.sum = 0;
    this.count = 0;
    this.chunk = new Int16Array(this.chunkSamples);
    this.filled = 0;
    this.port.onmessage = (event) => {
      if (event.data === "flush") this.flush();
    };
  }

  emit(value) {
    const clamped = Math.max(-1, Math.min(1, value));
    this.chunk[this.filled++] = clamped < 0 ? clamped * 0x8000 : clamped * 0x7fff;
    if (this.filled === this.chunkSamples) this.post();
  }

  post() {
    const full = this.chunk.subarray(0, this.filled);
    const buffer = full.slice().buffer; // a copy the size of what was filled
    this.port.postMessage(buffer, [buffer]);
    this.filled = 0;
  }

  flush() {
    if (this.filled > 0) this.post();
    this.port.postMessage("flushed");
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true; // no input yet (or the track ended): keep the node alive
    for (let i = 0; i < channel.length; i++) {
      this.sum += channel[i];
      this.count += 1;
      this.position += 1;
      if (this.position >= this.step) {
        this.position -= this.step;
        this.emit(this.sum / this.count);
        this.sum = 0;
        this.count = 0;
      }
    }
    return true;
  }
}

registerProcessor("pcm-recorder", PcmRecorder);
