// Voxroom browser client: the WebSocket protocol, the HTTP API, and hearing a room.
//
// A host app can import this module as it is (no build step):
//
//   import { Voxroom } from "/web-demo/voxroom.js";
//   const vox = new Voxroom({ token });
//   vox.on("speech_start", (m) => console.log(m.from, "says", m.text));
//   await vox.connect();
//   await vox.join("lobby");
//   const audio = await vox.listen("lobby");      // WebRTC, or WebSocket + WebCodecs
//   await vox.say("lobby", "Hello!");
//
// Every refusal is thrown as a VoxroomError with the server's `code` and a
// `message` meant for a person.

export class VoxroomError extends Error {
  constructor(code, message, extra = {}) {
    super(message);
    this.name = "VoxroomError";
    this.code = code;
    Object.assign(this, extra);
  }
}

const REQUEST_TIMEOUT_MS = 30000;
const FRAME_HEADER_BYTES = 20; // 16-byte utterance id + 4-byte big-endian sequence

function uuidFromBytes(bytes) {
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export class Voxroom {
  /**
   * @param {{token: string, baseUrl?: string}} options baseUrl defaults to this page's origin.
   */
  constructor({ token, baseUrl = window.location.origin }) {
    this.token = token;
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.ws = null;
    this._handlers = new Map();
    this._pending = new Map();
    this._nextId = 1;
    this._audioSinks = new Set(); // receive every binary frame (the WebCodecs player)
  }

  // ---- events ---------------------------------------------------------------------------

  /**
   * Call `handler(message)` for each server message of this type: "*" for every JSON message,
   * "frame" for each binary audio frame ({utterance, sequence, packet}), "close" on disconnect.
   */
  on(type, handler) {
    if (!this._handlers.has(type)) this._handlers.set(type, new Set());
    this._handlers.get(type).add(handler);
    return () => this._handlers.get(type).delete(handler);
  }

  _emit(type, message) {
    for (const key of type === "frame" ? [type] : [type, "*"]) {
      for (const handler of this._handlers.get(key) || []) {
        try {
          handler(message);
        } catch (err) {
          console.error("voxroom handler failed", err);
        }
      }
    }
  }

  // ---- WebSocket ------------------------------------------------------------------------

  /** Open the WebSocket; resolves once it is open. */
  connect() {
    const url = new URL("/v1/ws", this.baseUrl.replace(/^http/, "ws"));
    url.searchParams.set("token", this.token);
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    return new Promise((resolve, reject) => {
      ws.onopen = () => resolve(this);
      ws.onerror = () => reject(new VoxroomError("network", "Could not reach the Voxroom server."));
      ws.onmessage = (event) => this._receive(event.data);
      ws.onclose = (event) => {
        for (const { reject: fail } of this._pending.values()) {
          fail(new VoxroomError("closed", closeReason(event.code)));
        }
        this._pending.clear();
        this._emit("close", { type: "close", code: event.code, reason: closeReason(event.code) });
      };
    });
  }

  _receive(data) {
    if (data instanceof ArrayBuffer) {
      const bytes = new Uint8Array(data);
      const frame = {
        utterance: uuidFromBytes(bytes.subarray(0, 16)),
        sequence: new DataView(data).getUint32(16),
        packet: bytes.subarray(FRAME_HEADER_BYTES),
      };
      for (const sink of this._audioSinks) sink.frame(frame);
      this._emit("frame", frame);
      return;
    }
    const message = JSON.parse(data);
    for (const sink of this._audioSinks) sink.message?.(message);
    const pending = message.id !== undefined && this._pending.get(message.id);
    if (pending) {
      this._pending.delete(message.id);
      clearTimeout(pending.timer);
      if (message.type === "error") pending.reject(errorFrom(message));
      else pending.resolve(message);
    }
    this._emit(message.type, message);
  }

  /** Send one request and wait for the reply that echoes its id; an `error` reply rejects. */
  request(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new VoxroomError("closed", "Not connected to the server. Sign in again."));
    }
    const id = String(this._nextId++);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new VoxroomError("timeout", "The server did not answer in time. Try again."));
      }, REQUEST_TIMEOUT_MS);
      this._pending.set(id, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ ...message, id }));
    });
  }

  join(room) {
    return this.request({ type: "join", room });
  }

  leave(room) {
    return this.request({ type: "leave", room });
  }

  /** Speak `text` in the room; options: voice ("stock:NAME" or an account id), lang ("auto", "zh", "en", "ja"). */
  say(room, text, { voice, lang } = {}) {
    const message = { type: "say", room, text };
    if (voice) message.voice = voice;
    if (lang && lang !== "auto") message.lang = lang;
    return this.request(message);
  }

  ping() {
    return this.request({ type: "ping" });
  }

  close() {
    this.ws?.close(1000);
  }

  // ---- HTTP API ---------------------------------------------------------------------------

  async http(method, path, { json, body, contentType } = {}) {
    const headers = { Authorization: `Bearer ${this.token}` };
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    } else if (contentType) {
      headers["Content-Type"] = contentType;
    }
    let response;
    try {
      response = await fetch(this.baseUrl + path, { method, headers, body });
    } catch {
      throw new VoxroomError("network", "Could not reach the Voxroom server. Check your connection.");
    }
    if (response.status === 204) return null;
    const payload = await response.json().catch(() => null);
    if (!response.ok) {
      const error = payload?.error || {};
      throw new VoxroomError(
        error.code || `http_${response.status}`,
        error.message || httpMessage(response.status),
        { status: response.status, quality: payload?.quality, retry_after_s: error.retry_after_s },
      );
    }
    return payload;
  }

  voiceStatus() {
    return this.http("GET", "/v1/voices/me");
  }

  /** Upload an enrollment recording (a Blob or File); lang is a hint: "zh", "en", "ja" or "unknown". */
  enroll(recording, lang = "unknown") {
    const type = (recording.type || "audio/wav").split(";")[0];
    return this.http("POST", `/v1/voices?lang=${encodeURIComponent(lang)}`, { body: recording, contentType: type });
  }

  setConsent(enabled) {
    return this.http("PUT", "/v1/voices/me/consent", { json: { enabled } });
  }

  grant(grantee, expiresAt) {
    const json = { grantee };
    if (expiresAt) json.expires_at = expiresAt;
    return this.http("POST", "/v1/voices/me/grants", { json });
  }

  revoke(grantee) {
    return this.http("DELETE", `/v1/voices/me/grants/${encodeURIComponent(grantee)}`);
  }

  deleteVoice() {
    return this.http("DELETE", "/v1/voices/me");
  }

  stockVoices() {
    return this.http("GET", "/v1/voices/stock");
  }

  // ---- hearing the room ---------------------------------------------------------------------

  /**
   * Play the room's speech. mode "auto" tries WebRTC first and falls back to decoding the
   * WebSocket's Opus frames with WebCodecs. Resolves to a player with stop() and stats().
   */
  async listen(room, { mode = "auto", audioElement } = {}) {
    if (mode === "webrtc" || (mode === "auto" && window.RTCPeerConnection)) {
      try {
        return await RtcPlayer.open(this, room, audioElement);
      } catch (err) {
        if (mode === "webrtc") throw err;
        console.warn("WebRTC failed, using WebSocket audio", err);
      }
    }
    return WebCodecsPlayer.open(this, room);
  }
}

/** The room's mixed speech on one WebRTC audio track, played by an <audio> element. */
export class RtcPlayer {
  static async open(vox, room, audioElement) {
    const pc = new RTCPeerConnection({ iceServers: [] });
    pc.addTransceiver("audio", { direction: "recvonly" });
    const element = audioElement || new Audio();
    element.autoplay = true;
    const player = new RtcPlayer(pc, element, room);
    pc.ontrack = (event) => {
      element.srcObject = event.streams[0] || new MediaStream([event.track]);
      element.play().catch(() => {}); // may need a click first; the page offers one
    };
    await pc.setLocalDescription(await pc.createOffer());
    await iceGatheringDone(pc);
    let answer;
    try {
      answer = await vox.http("POST", "/v1/rtc/offer", {
        json: { room, sdp: pc.localDescription.sdp, type: "offer" },
      });
    } catch (err) {
      pc.close();
      throw err;
    }
    player.peer = answer.peer;
    await pc.setRemoteDescription({ type: answer.type, sdp: answer.sdp });
    if (!(await connected(pc))) {
      pc.close();
      throw new VoxroomError("rtc_failed", "Audio could not connect over WebRTC (a firewall may block it).");
    }
    return player;
  }

  constructor(pc, element, room) {
    this.kind = "webrtc";
    this.pc = pc;
    this.element = element;
    this.room = room;
  }

  /** Inbound audio figures: bytes received and the energy actually played out. */
  async stats() {
    const out = {
      bytesReceived: 0,
      totalAudioEnergy: 0,
      totalSamplesDuration: 0,
      audioLevel: 0,
      jitterBufferDelay: 0, // seconds, summed over every emitted sample: divide by the count
      jitterBufferEmittedCount: 0,
    };
    const report = await this.pc.getStats();
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio") {
        out.bytesReceived = s.bytesReceived || 0;
        out.totalAudioEnergy = s.totalAudioEnergy || 0;
        out.totalSamplesDuration = s.totalSamplesDuration || 0;
        out.audioLevel = s.audioLevel || 0;
        out.jitterBufferDelay = s.jitterBufferDelay || 0;
        out.jitterBufferEmittedCount = s.jitterBufferEmittedCount || 0;
      }
    });
    return out;
  }

  stop() {
    this.element.srcObject = null;
    this.pc.close();
  }
}

/** The fallback: the WebSocket's Opus frames decoded with WebCodecs and played with WebAudio. */
export class WebCodecsPlayer {
  static async open(vox, room) {
    if (!window.AudioDecoder) {
      throw new VoxroomError("unsupported", "This browser can play neither WebRTC nor WebCodecs audio.");
    }
    const context = new AudioContext({ sampleRate: 48000 });
    await context.resume().catch(() => {});
    return new WebCodecsPlayer(vox, context, room);
  }

  constructor(vox, context, room) {
    this.kind = "websocket";
    this.vox = vox;
    this.context = context;
    this.room = room;
    this.analyser = context.createAnalyser();
    this.analyser.connect(context.destination);
    this.utterances = new Map(); // id -> {decoder, playAt}
    this.bytesReceived = 0;
    this.totalAudioEnergy = 0;
    this.totalSamplesDuration = 0;
    vox._audioSinks.add(this);
  }

  _stream(id) {
    let stream = this.utterances.get(id);
    if (!stream) {
      stream = { playAt: 0, decoder: null };
      stream.decoder = new AudioDecoder({
        output: (data) => this._play(stream, data),
        error: (err) => console.warn("opus decode failed", err),
      });
      stream.decoder.configure({ codec: "opus", sampleRate: 48000, numberOfChannels: 1 });
      this.utterances.set(id, stream);
    }
    return stream;
  }

  frame({ utterance, sequence, packet }) {
    this.bytesReceived += packet.byteLength;
    const chunk = new EncodedAudioChunk({ type: "key", timestamp: sequence * 20000, data: packet });
    this._stream(utterance).decoder.decode(chunk);
  }

  message(message) {
    if (message.type === "speech_end" || message.type === "speech_error") {
      const stream = this.utterances.get(message.utterance);
      if (stream) {
        this.utterances.delete(message.utterance);
        stream.decoder.flush().then(() => stream.decoder.close()).catch(() => {});
      }
    }
  }

  _play(stream, data) {
    const samples = new Float32Array(data.numberOfFrames);
    data.copyTo(samples, { planeIndex: 0, format: "f32-planar" });
    data.close();
    let energy = 0;
    for (const x of samples) energy += x * x;
    this.totalAudioEnergy += energy / 48000;
    this.totalSamplesDuration += samples.length / 48000;
    const buffer = this.context.createBuffer(1, samples.length, 48000);
    buffer.copyToChannel(samples, 0);
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.analyser);
    // Each utterance keeps its own cursor; overlapping utterances simply sound together.
    const now = this.context.currentTime;
    if (stream.playAt < now) stream.playAt = now + 0.05;
    source.start(stream.playAt);
    stream.playAt += buffer.duration;
  }

  async stats() {
    return {
      bytesReceived: this.bytesReceived,
      totalAudioEnergy: this.totalAudioEnergy,
      totalSamplesDuration: this.totalSamplesDuration,
    };
  }

  stop() {
    this.vox._audioSinks.delete(this);
    for (const stream of this.utterances.values()) stream.decoder.close();
    this.utterances.clear();
    this.context.close();
  }
}

function connected(pc, timeoutMs = 8000) {
  // Resolves true once connected, false on failure or after the timeout (then "auto" falls back).
  return new Promise((resolve) => {
    const check = () => {
      if (pc.connectionState === "connected") finish(true);
      else if (pc.connectionState === "failed" || pc.connectionState === "closed") finish(false);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    const finish = (ok) => {
      clearTimeout(timer);
      pc.removeEventListener("connectionstatechange", check);
      resolve(ok);
    };
    pc.addEventListener("connectionstatechange", check);
    check();
  });
}

function iceGatheringDone(pc, timeoutMs = 3000) {
  // The server does not trickle: the offer goes out with its candidates.
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", done);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, timeoutMs);
  });
}

function errorFrom(message) {
  return new VoxroomError(message.code, message.message, { retry_after_s: message.retry_after_s, category: message.category });
}

function closeReason(code) {
  switch (code) {
    case 4401:
      return "Your sign-in is missing or has expired. Sign in again.";
    case 4008:
      return "The connection fell too far behind and was closed. Reconnect to continue.";
    case 1000:
      return "Disconnected.";
    default:
      return `The connection to the server was lost (code ${code}). Reconnect to continue.`;
  }
}

function httpMessage(status) {
  if (status === 401) return "Your sign-in is missing or has expired. Sign in again.";
  if (status === 404) return "This feature is not available on this server.";
  if (status === 413) return "The file is too large.";
  if (status >= 500) return "The server had a problem. Try again in a moment.";
  return `The server refused the request (HTTP ${status}).`;
}
