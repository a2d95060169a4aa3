// Microphone recording for enrollment: MediaRecorder to Ogg/WebM Opus, which the server decodes.

const PREFERRED_TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm"];
export const MAX_SECONDS = 300;

export class Recorder {
  constructor({ onTick = () => {}, onAutoStop = () => {} } = {}) {
    this.onTick = onTick;
    this.onAutoStop = onAutoStop;
    this.recorder = null;
    this.stream = null;
    this.chunks = [];
    this.startedAt = 0;
    this.timer = null;
  }

  get recording() {
    return this.recorder?.state === "recording";
  }

  async start() {
    if (!navigator.mediaDevices?.getUserMedia || !window.MediaRecorder) {
      throw new Error("This browser cannot record audio. Upload a recording instead.");
    }
    try {
      // Raw sound: the server judges the recording itself, so no browser clean-up.
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
      });
    } catch (err) {
      if (err.name === "NotAllowedError") {
        throw new Error("Microphone access was refused. Allow it in the browser's address bar, or upload a file.");
      }
      if (err.name === "NotFoundError") throw new Error("No microphone was found. Plug one in, or upload a file.");
      throw new Error(`The microphone could not be opened (${err.name}).`);
    }
    const mimeType = PREFERRED_TYPES.find((type) => MediaRecorder.isTypeSupported(type)) || "";
    this.recorder = new MediaRecorder(this.stream, mimeType ? { mimeType } : {});
    this.chunks = [];
    this.recorder.ondataavailable = (event) => event.data.size && this.chunks.push(event.data);
    this.recorder.start(1000);
    this.startedAt = performance.now();
    this.timer = setInterval(() => {
      const seconds = this.elapsed();
      this.onTick(seconds);
      if (seconds >= MAX_SECONDS) this.onAutoStop();
    }, 250);
  }

  elapsed() {
    return this.startedAt ? (performance.now() - this.startedAt) / 1000 : 0;
  }

  /** Stop and return the recording as one Blob. */
  stop() {
    clearInterval(this.timer);
    const recorder = this.recorder;
    return new Promise((resolve) => {
      recorder.onstop = () => {
        this.stream.getTracks().forEach((track) => track.stop());
        resolve(new Blob(this.chunks, { type: recorder.mimeType.split(";")[0] || "audio/webm" }));
      };
      recorder.stop();
    });
  }
}
