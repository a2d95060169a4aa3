"""The quality gate: is this recording good enough to clone a voice from, and if not, what to do.

Runs WebRTC noise suppression, then speech activity detection, then measures length,
speech time, signal-to-noise ratio, clipping, level, a no-reference quality score
(DNSMOS) and whether every part of the recording is the same speaker. A refused
recording comes back with advice a person can act on. The same code serves the HTTP
upload and the `voxroom enroll` command.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from synth.enroll import dnsmos, speech, voiceprint

Progress = Callable[[float, str], None]

ADVICE_NO_SOUND = "We could not hear anything: check that the microphone is switched on and not muted."
ADVICE_NO_SPEECH = "We could not hear anyone speaking: speak clearly, close to the microphone."
ADVICE_CLOSER = "Move closer to the microphone, or turn its volume up."
ADVICE_CLIPPING = "The recording is distorted: move a little further from the microphone or turn its volume down."
ADVICE_QUIETER = "Record somewhere quieter: the background noise is too loud."
ADVICE_POOR = "The recording sounds poor: record somewhere quieter, close to the microphone, with no music or effects."
ADVICE_ONE_SPEAKER = "We heard more than one voice: record only yourself, with nobody else speaking."
ADVICE_TOO_LONG = "Keep the recording under {limit} minutes."


def advice_speak_longer(seconds: float) -> str:
    return f"Speak for at least {max(1, math.ceil(seconds))} more seconds."


@dataclasses.dataclass(frozen=True)
class GateLimits:
    min_duration_s: float = 10.0
    max_duration_s: float = 300.0
    min_speech_s: float = 8.0
    min_snr_db: float = 5.0
    max_clipping_ratio: float = 0.005  # share of samples at full scale
    min_level_dbfs: float = -40.0  # speech level (RMS of speech frames)
    silence_dbfs: float = -70.0  # loudest frames below this: nothing was recorded
    min_mos: float = 2.0  # DNSMOS overall of the speech as recorded, 1..5
    min_background_mos: float = 2.3  # DNSMOS background score: below it, noise is audible through the speech
    min_speaker_agreement: float = 0.78  # cosine between the two most different halves of the speech
    segment_s: float = 4.0  # speech per voiceprint segment for the one-speaker check
    min_speaker_check_s: float = 6.0  # with less speech, segment voiceprints are too noisy to compare


@dataclasses.dataclass(frozen=True)
class QualityReport:
    duration_s: float
    speech_s: float
    snr_db: float
    clipping_ratio: float
    level_dbfs: float
    mos: float | None  # DNSMOS overall; None when there was too little speech to score
    background_mos: float | None  # DNSMOS background (5 = no audible noise)
    speaker_agreement: float | None  # None when there was too little speech to compare
    advice: tuple[str, ...]
    verdict: str  # "ok" | "rejected"

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    def to_dict(self) -> dict[str, object]:
        out = dataclasses.asdict(self)
        out["advice"] = list(self.advice)
        for key in ("duration_s", "speech_s", "snr_db", "level_dbfs"):
            out[key] = round(float(out[key]), 2)
        out["clipping_ratio"] = round(self.clipping_ratio, 5)
        for key in ("mos", "background_mos", "speaker_agreement"):
            out[key] = None if out[key] is None else round(float(out[key]), 3)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> QualityReport:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["advice"] = tuple(values.get("advice") or ())  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True, eq=False)
class Analysis:
    """What the gate computed and the feature extraction reuses (in memory only)."""

    pcm24k: np.ndarray  # the decoded recording
    clean16k: np.ndarray  # after noise suppression
    speech_flags: np.ndarray  # per 30 ms frame of clean16k
    segment_voiceprints: np.ndarray  # [k, 256]

    def speech16k(self) -> np.ndarray:
        return self.clean16k[speech.frame_mask_to_samples(self.speech_flags, self.clean16k.size)]


def assess(
    pcm24k: np.ndarray,
    limits: GateLimits | None = None,
    progress: Progress | None = None,
) -> tuple[QualityReport, Analysis]:
    """Measure a 24 kHz mono recording and decide whether it may be enrolled."""
    limits = limits or GateLimits()
    report = progress or (lambda fraction, stage: None)
    report(0.0, "cleaning up noise")
    raw16k = speech.to_16k(pcm24k, 24000)
    clean16k = speech.suppress_noise(raw16k)
    report(0.2, "finding speech")
    flags = speech.speech_frames(clean16k)
    duration_s = pcm24k.size / 24000.0
    speech_s = float(flags.sum()) * speech.VAD_FRAME_MS / 1000.0
    energies = _frame_energies(raw16k, speech.VAD_FRAME)
    snr_db = _snr_db(energies, flags[: energies.size])
    level_dbfs = _db(float(energies[flags[: energies.size]].mean())) if flags.any() else _db(0.0)
    loudest_dbfs = _db(float(np.percentile(energies, 95))) if energies.size else _db(0.0)
    clipping_ratio = float(np.mean(np.abs(pcm24k) >= 0.99)) if pcm24k.size else 0.0

    enough_speech = speech_s >= 2.0
    speech16k = clean16k[speech.frame_mask_to_samples(flags, clean16k.size)]
    mos = background_mos = None
    if enough_speech:
        report(0.4, "scoring the sound quality")
        # Scored as recorded (before noise suppression): the point is to hear the room.
        scores = dnsmos.score(raw16k[speech.frame_mask_to_samples(flags, raw16k.size)])
        mos, background_mos = scores.ovrl, scores.bak
    segments = np.zeros((0, 256), dtype=np.float32)
    agreement = None
    if speech_s >= limits.min_speaker_check_s:
        report(0.6, "checking there is only one speaker")
        segments = _segment_voiceprints(speech16k, limits.segment_s)
        agreement = speaker_agreement(segments)
    report(0.9, "deciding")

    advice: list[str] = []
    if loudest_dbfs < limits.silence_dbfs:
        advice.append(ADVICE_NO_SOUND)
    elif speech_s < 0.5:
        advice.append(ADVICE_NO_SPEECH)
        # Sound but no speech: either a voice too far away to register, or only noise.
        advice.append(ADVICE_CLOSER if loudest_dbfs < limits.min_level_dbfs else ADVICE_QUIETER)
    else:
        if level_dbfs < limits.min_level_dbfs:
            advice.append(ADVICE_CLOSER)
        if clipping_ratio > limits.max_clipping_ratio:
            advice.append(ADVICE_CLIPPING)
        noisy_background = background_mos is not None and background_mos < limits.min_background_mos
        if snr_db < limits.min_snr_db or noisy_background:
            advice.append(ADVICE_QUIETER)
        if mos is not None and mos < limits.min_mos and not advice:
            advice.append(ADVICE_POOR)
        if agreement is not None and agreement < limits.min_speaker_agreement:
            advice.append(ADVICE_ONE_SPEAKER)
    if duration_s > limits.max_duration_s:
        advice.append(ADVICE_TOO_LONG.format(limit=round(limits.max_duration_s / 60)))
    missing = max(limits.min_speech_s - speech_s, limits.min_duration_s - duration_s)
    if missing > 0:
        advice.append(advice_speak_longer(missing))
    quality = QualityReport(
        duration_s=duration_s,
        speech_s=speech_s,
        snr_db=snr_db,
        clipping_ratio=clipping_ratio,
        level_dbfs=level_dbfs,
        mos=mos,
        background_mos=background_mos,
        speaker_agreement=agreement,
        advice=tuple(advice),
        verdict="rejected" if advice else "ok",
    )
    return quality, Analysis(pcm24k, clean16k, flags, segments)


def speaker_agreement(segments: np.ndarray) -> float | None:
    """How alike the two most different groups of segments sound (cosine of their mean voiceprints).

    Split the segments around the two least alike, and compare the groups' centroids: one
    speaker gives a high value whatever the split; two speakers give two clusters far apart.
    """
    if segments.shape[0] < 2:
        return None
    sims = segments @ segments.T
    a, b = np.unravel_index(np.argmin(sims), sims.shape)
    to_a = sims[:, a] >= sims[:, b]
    group_a = voiceprint.unit(segments[to_a].mean(axis=0))
    group_b = voiceprint.unit(segments[~to_a].mean(axis=0))
    return float(np.dot(group_a, group_b))


def _segment_voiceprints(speech16k: np.ndarray, segment_s: float) -> np.ndarray:
    """Voiceprints of consecutive pieces of the speech; at least two pieces when there is enough speech."""
    length = int(segment_s * speech.RATE)
    count = max(2, speech16k.size // length)
    bounds = np.linspace(0, speech16k.size, count + 1).astype(int)
    return np.stack([voiceprint.embed(speech16k[s:e]) for s, e in zip(bounds[:-1], bounds[1:], strict=True)])


def _frame_energies(pcm: np.ndarray, frame: int) -> np.ndarray:
    count = pcm.size // frame
    frames = pcm[: count * frame].astype(np.float64).reshape(count, frame)
    return np.mean(frames**2, axis=1)


def _snr_db(energies: np.ndarray, speech_flags: np.ndarray) -> float:
    """Speech power over the noise floor (the quietest tenth of the frames), in dB, within -20..60."""
    if energies.size == 0 or not speech_flags.any():
        return 0.0
    noise = max(float(np.percentile(energies, 10)), 1e-10)
    speech_power = float(energies[speech_flags].mean())
    return float(np.clip(10.0 * np.log10(max(speech_power - noise, 1e-12) / noise), -20.0, 60.0))


def _db(power: float) -> float:
    return float(10.0 * np.log10(max(power, 1e-12)))
