"""The server's Prometheus metrics, in one registry per server (so tests can run several)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from synth.enroll.service import FitOutcome
    from synth.yielding import RenderCount

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0)


class FitPauses:
    """The fit process's waits while the server renders speech (synth.yielding), read when /metrics is scraped.

    The gauge is the one for an alert: a fit paused for minutes on end is a server whose rooms keep the CPU busy,
    so new voices stay on their nearest stock voice. Zeros when fits do not wait (`VOXROOM_FIT_YIELD=off`)."""

    def __init__(self) -> None:
        self.render_count: RenderCount | None = None
        self._total_s = 0.0

    def collect(self) -> Iterator[Metric]:
        now_s, total_s = self.render_count.pauses() if self.render_count is not None else (0.0, 0.0)
        # The fit process ends a wait in two writes (the wait under way cleared, then the total raised): a scrape
        # between them reads too little, and a counter must never go down, so the last total stands until then.
        self._total_s = max(self._total_s, total_s)
        yield GaugeMetricFamily(
            "voxroom_voice_fit_paused_now_seconds",
            "How long the running voice fit has been paused, in its wait under way, while the server renders speech "
            "(0: not paused)",
            value=now_s,
        )
        yield CounterMetricFamily(
            "voxroom_voice_fit_paused_seconds",
            "Seconds voice fits have spent paused while the server rendered speech",
            value=self._total_s,
        )


class FitBacklog:
    """Voices still waiting for their fit, read when /metrics is scraped.

    Fits run one at a time in one process, so a burst of enrollments queues: the oldest unfinished fit's age says
    how long a voice has stayed on its nearest stock voice, whether it queued, ran or paused for the rooms."""

    def __init__(self) -> None:
        self.read: Callable[[], tuple[int, float]] | None = None  # EnrollmentService.fit_backlog

    def collect(self) -> Iterator[Metric]:
        pending, oldest_s = self.read() if self.read is not None else (0, 0.0)
        yield GaugeMetricFamily(
            "voxroom_voice_fits_pending",
            "Voices whose fit has not finished: running, or queued behind another voice's fit",
            value=pending,
        )
        yield GaugeMetricFamily(
            "voxroom_voice_fit_oldest_pending_seconds",
            "Seconds on the clock since the oldest unfinished voice fit was started (0: none pending)",
            value=oldest_s,
        )


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Gauge("voxroom_connections", "Open WebSocket connections", registry=r)
        self.rooms = Gauge("voxroom_rooms", "Rooms with at least one member", registry=r)
        self.messages_in = Counter("voxroom_messages_in_total", "Client messages by type", ["type"], registry=r)
        self.errors = Counter("voxroom_errors_total", "Error replies sent, by code", ["code"], registry=r)
        self.slow_client_drops = Counter(
            "voxroom_slow_client_drops_total", "Connections closed with 4008 for falling behind", registry=r
        )
        self.auth_failures = Counter("voxroom_auth_failures_total", "Rejected tokens", registry=r)
        self.rtc_frames_skipped = Counter(
            "voxroom_rtc_frames_skipped_total",
            "20 ms frames a WebRTC listener's sender fell too far behind to send (the oldest waiting one is dropped)",
            registry=r,
        )
        self.utterances = Counter(
            "voxroom_utterances_total", "Utterances finished, by outcome", ["outcome"], registry=r
        )
        self.frames_out = Counter("voxroom_frames_sent_total", "Opus frames queued to listeners", registry=r)
        self.ttfa = Histogram(
            "voxroom_time_to_first_audio_seconds",
            "From accepted say to its first Opus packet",
            ["cached"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge("voxroom_synth_queue_depth", "Clauses waiting for an engine", registry=r)
        self.queue_wait = Histogram(
            "voxroom_synth_queue_wait_seconds",
            "Time a clause waited before compute",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "voxroom_synth_batch_size", "Clauses per engine call", buckets=(1, 2, 4, 8, 16, 32), registry=r
        )
        self.engine_rtf = Histogram(
            "voxroom_engine_real_time_factor",
            "Compute seconds per audio second, per engine call",
            ["engine"],
            buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0),
            registry=r,
        )
        self.audio_seconds = Counter(
            "voxroom_audio_seconds_total", "Seconds of speech produced", ["engine"], registry=r
        )
        # Its rate over the number of workers is how busy the engine is: near 1 and refusals mean it is full.
        self.engine_calibrated_rtf = Gauge(
            "voxroom_engine_calibrated_real_time_factor",
            "Compute seconds per audio second of a 2-second clause, measured at startup (above 1: slower than "
            "real time, streams will pause)",
            ["engine"],
            registry=r,
        )
        self.engine_busy = Counter(
            "voxroom_engine_busy_seconds_total", "Wall seconds engine calls ran, summed over workers", ["engine"],
            registry=r,
        )
        self.dropped = Counter(
            "voxroom_synth_dropped_total", "Clauses dropped before compute, by reason", ["reason"], registry=r
        )
        self.admitted_behind = Counter(
            "voxroom_synth_admitted_behind_total",
            "Utterances admitted with their first clause queued behind work it would otherwise have made late",
            registry=r,
        )
        self.continuations_streamed = Counter(
            "voxroom_synth_continuations_streamed_total",
            "Continuations rendered in pieces because, rendered whole, they would have been ready after the audio "
            "ahead of them ran out",
            registry=r,
        )
        self.refused = Counter(
            "voxroom_synth_refused_total",
            "Utterances refused with overloaded: max_active (too many in flight) or compute (would be late)",
            ["reason"],
            registry=r,
        )
        self.first_audio_hold = Histogram(
            "voxroom_synth_first_audio_hold_seconds",
            "How long a rendered first clause was held so its continuations arrive in time",
            buckets=(0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5),
            registry=r,
        )
        self.hold_capped = Counter(
            "voxroom_synth_hold_capped_total",
            "First audio that could not be held long enough for its continuations (capped by its first-audio "
            "deadline): such an utterance is likely to have a gap",
            registry=r,
        )
        self.stream_underruns = Counter(
            "voxroom_stream_underruns_total",
            "Utterances with a gap: some audio left later than its place in the stream (counted from the first "
            "packet) by more than a listener's 200 ms jitter buffer",
            registry=r,
        )
        self.stream_lateness = Histogram(
            "voxroom_stream_worst_lateness_seconds",
            "Per utterance heard in several pieces: how late its latest piece left against its place in the stream "
            "(negative: ahead of it)",
            buckets=(-2.0, -1.0, -0.5, -0.2, 0.0, 0.1, 0.2, 0.5, 1.0, 2.0),
            registry=r,
        )
        self.render_misprediction = Histogram(
            "voxroom_synth_render_misprediction_seconds",
            "Engine call wall time less the time admission predicted for it, by kind of call (streamed: a first "
            "clause heard piece by piece; whole)",
            ["kind"],
            buckets=(-1.0, -0.5, -0.25, -0.1, 0.0, 0.1, 0.25, 0.5, 1.0),
            registry=r,
        )
        self.predicted_slack = Histogram(
            "voxroom_synth_admission_slack_seconds",
            "At admission: predicted slack of the latest clause with the new utterance added (negative: refused)",
            buckets=(-2.0, -1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 2.0, 4.0),
            registry=r,
        )

        self.cache_hits = Counter(
            "voxroom_phrase_cache_hits_total", "Utterances served from the phrase cache", registry=r
        )
        self.cache_misses = Counter(
            "voxroom_phrase_cache_misses_total", "Cacheable utterances not in the cache", registry=r
        )
        self.cache_bytes = Gauge("voxroom_phrase_cache_bytes", "Bytes held by the in-memory phrase cache", registry=r)
        self.cache_evictions = Counter(
            "voxroom_phrase_cache_evictions_total", "Entries evicted to stay in bounds", registry=r
        )

        self.watermark_embed = Histogram(
            "voxroom_watermark_embed_seconds",
            "CPU seconds spent marking one clause",
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25),
            registry=r,
        )
        self.watermark_audio = Counter("voxroom_watermark_audio_seconds_total", "Seconds of speech marked", registry=r)
        self.detections = Counter(
            "voxroom_detections_total", "Watermark detections, by verdict", ["verdict"], registry=r
        )

        self.voice_fits = Counter(
            "voxroom_voice_fits_total", "Voice fits finished, by outcome (ready, failed)", ["outcome"], registry=r
        )
        self.voice_fit_cpu = Histogram(
            "voxroom_voice_fit_cpu_seconds",
            "CPU seconds of one voice fit (background process), scoring included",
            buckets=(15, 30, 60, 120, 180, 240, 300, 450, 600),
            registry=r,
        )
        self.voice_fit_wall = Histogram(
            "voxroom_voice_fit_wall_seconds",
            "Seconds on the clock from a voice fit's start to its result: far above its CPU seconds when the fit "
            "waited behind another voice's, while the server rendered speech, or for a CPU that synthesis kept busy",
            buckets=(15, 30, 60, 120, 240, 300, 450, 600, 900, 1800, 3600),
            registry=r,
        )
        self.voice_fit_similarity = Histogram(
            "voxroom_voice_fit_similarity",
            "Judged similarity of a fitted voice to its recording, 0 = a stranger, 1 = the same person",
            buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
            registry=r,
        )
        self.voice_colours = Counter(
            "voxroom_voice_colours_total",
            "Fitted voices by the share of the recording's colour kept (0 to 1; skipped: no time left for it)",
            ["share"],
            registry=r,
        )
        self.fit_pauses = FitPauses()
        r.register(self.fit_pauses)
        self.fit_backlog = FitBacklog()
        r.register(self.fit_backlog)

    def record_embed(self, cpu_s: float, audio_s: float) -> None:
        self.watermark_embed.observe(cpu_s)
        self.watermark_audio.inc(audio_s)

    def record_voice_fit(self, outcome: FitOutcome) -> None:
        if not outcome.ready:
            self.voice_fits.labels("failed").inc()
            return
        self.voice_fits.labels("ready").inc()
        if outcome.cpu_s is not None:
            self.voice_fit_cpu.observe(outcome.cpu_s)
        if outcome.wall_s is not None:
            self.voice_fit_wall.observe(outcome.wall_s)
        if outcome.similarity is not None:
            self.voice_fit_similarity.observe(outcome.similarity)
        share = "skipped" if outcome.colour_share is None else f"{outcome.colour_share:g}"
        self.voice_colours.labels(share).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
