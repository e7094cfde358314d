// Players for a response that is still arriving. Each one takes bytes as they come (`push`), is told when they
// stop (`end`), calls `onStart` when sound first comes out, and settles `finished` with the seconds it played.
//
// pcm and wav are decoded here and scheduled on Web Audio, so the first half second plays while the rest is
// still being made; formats the browser's MediaSource takes (mp3, aac in Chromium) stream through it; the others
// play once the whole file is in.

const CONTENT_TYPES = { mp3: "audio/mpeg", aac: "audio/aac", opus: "audio/opus", flac: "audio/flac" };
const PLAYABLE_TYPES = { opus: "audio/ogg" }; // what an audio element takes for the file the service sends

// Whether this browser plays `format` while it arrives, rather than once it is complete.
export function streams(format) {
  return format === "pcm" || format === "wav" || Boolean(window.MediaSource?.isTypeSupported(CONTENT_TYPES[format]));
}

export function playerFor(format, sampleRate, audioElement) {
  if (format === "pcm") return new PcmPlayer(sampleRate, null);
  if (format === "wav") return new PcmPlayer(sampleRate, new WavHeader());
  if (streams(format)) return new MediaSourcePlayer(audioElement, CONTENT_TYPES[format]);
  return new WholeFilePlayer(audioElement, PLAYABLE_TYPES[format] ?? CONTENT_TYPES[format]);
}

// One AudioContext for the page: making one costs tens of milliseconds, which would add to the first audio's wait.
let sharedContext = null;

class PcmPlayer {
  constructor(sampleRate, header) {
    this.onStart = () => {};
    this.sampleRate = sampleRate;
    this.header = header;
    sharedContext ??= new AudioContext();
    this.context = sharedContext;
    if (this.context.state === "suspended") this.context.resume();
    this.leftover = new Uint8Array(0);
    this.sources = new Set();
    this.firstStart = null;
    this.nextStart = 0;
    this.seconds = 0;
    this.ended = false;
    this.finished = new Promise((resolve) => (this.resolve = resolve));
  }

  push(chunk) {
    const bytes = join(this.leftover, this.header ? this.header.strip(chunk) : chunk);
    const usable = bytes.length - (bytes.length % 2); // 16-bit samples may straddle two chunks
    this.leftover = bytes.slice(usable);
    if (usable === 0) return;
    const samples = new DataView(bytes.buffer, bytes.byteOffset, usable);
    const buffer = this.context.createBuffer(1, usable / 2, this.sampleRate);
    const channel = buffer.getChannelData(0);
    for (let i = 0; i < channel.length; i++) channel[i] = samples.getInt16(i * 2, true) / 32768;
    this.schedule(buffer);
  }

  schedule(buffer) {
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.context.destination);
    // Back to back with what is queued; after a gap in the stream, as soon as possible.
    const startAt = Math.max(this.nextStart, this.context.currentTime);
    source.start(startAt);
    this.nextStart = startAt + buffer.duration;
    this.seconds += buffer.duration;
    this.sources.add(source);
    source.onended = () => {
      this.sources.delete(source);
      this.settle();
    };
    if (this.firstStart === null) {
      this.firstStart = startAt;
      this.onStart();
    }
  }

  end() {
    this.ended = true;
    this.settle();
  }

  stop() {
    const played = this.firstStart === null ? 0 : Math.min(this.seconds, this.context.currentTime - this.firstStart);
    for (const source of this.sources) {
      source.onended = null;
      source.stop();
    }
    this.sources.clear();
    this.resolve(played);
  }

  settle() {
    if (this.ended && this.sources.size === 0) this.resolve(this.seconds);
  }
}

// A streamed WAV's header (with 0xFFFFFFFF sizes) comes first; everything after the `data` chunk's header is pcm.
class WavHeader {
  constructor() {
    this.seen = new Uint8Array(0);
    this.done = false;
  }

  strip(chunk) {
    if (this.done) return chunk;
    this.seen = join(this.seen, chunk);
    const view = new DataView(this.seen.buffer, this.seen.byteOffset, this.seen.byteLength);
    let offset = 12; // "RIFF", size, "WAVE"
    while (offset + 8 <= this.seen.length) {
      const id = String.fromCharCode(...this.seen.subarray(offset, offset + 4));
      if (id === "data") {
        this.done = true;
        return this.seen.subarray(offset + 8);
      }
      const size = view.getUint32(offset + 4, true);
      offset += 8 + size + (size % 2);
    }
    return new Uint8Array(0);
  }
}

class MediaElementPlayer {
  constructor(audio) {
    this.onStart = () => {};
    this.audio = audio;
    if (audio.src.startsWith("blob:")) URL.revokeObjectURL(audio.src);
    audio.hidden = false;
    this.finished = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // Handler properties, not listeners: the element outlives this player, and the next one replaces them.
    audio.onplaying = () => {
      audio.onplaying = null;
      this.onStart();
    };
    audio.onended = () => this.resolve(audio.duration);
    audio.onerror = () => this.reject(new Error(`The browser could not play this audio (${audio.error?.message || "no detail"}).`));
  }

  play() {
    this.audio.play().catch((error) => {
      // AbortError: stopped (or replaced) before it began, which stop() has already settled.
      if (error.name !== "AbortError") this.reject(new Error(`The browser would not play the audio: ${error.message}`));
    });
  }

  stop() {
    this.audio.pause();
    this.resolve(this.audio.currentTime);
  }
}

class MediaSourcePlayer extends MediaElementPlayer {
  constructor(audio, contentType) {
    super(audio);
    this.queue = [];
    this.ended = false;
    this.buffer = null;
    this.source = new MediaSource();
    this.source.addEventListener(
      "sourceopen",
      () => {
        this.buffer = this.source.addSourceBuffer(contentType);
        this.buffer.mode = "sequence";
        this.buffer.addEventListener("updateend", () => this.pump());
        this.pump();
      },
      { once: true },
    );
    audio.src = URL.createObjectURL(this.source);
    this.play();
  }

  push(chunk) {
    this.queue.push(chunk);
    this.pump();
  }

  end() {
    this.ended = true;
    this.pump();
  }

  pump() {
    if (this.buffer === null || this.buffer.updating || this.source.readyState !== "open") return;
    if (this.queue.length > 0) this.buffer.appendBuffer(this.queue.shift());
    else if (this.ended) this.source.endOfStream();
  }
}

class WholeFilePlayer extends MediaElementPlayer {
  constructor(audio, type) {
    super(audio);
    this.type = type;
    this.parts = [];
  }

  push(chunk) {
    this.parts.push(chunk);
  }

  end() {
    this.audio.src = URL.createObjectURL(new Blob(this.parts, { type: this.type }));
    this.play();
  }
}

function join(a, b) {
  if (a.length === 0) return b;
  const both = new Uint8Array(a.length + b.length);
  both.set(a);
  both.set(b, a.length);
  return both;
}
