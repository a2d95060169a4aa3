"""How differently coloured is each reference speaker's enrollment recording from their probe?

The fit's colour matches the enrollment recording's long-term spectrum, microphone and room included, while the
benchmark judges the output against *_probe.wav, another recording of the same person. Where the two recordings
differ in colour, the colour can move the output away from the probe. This prints, per speaker, the long-term
spectrum of the louder half of the frames (mostly speech) of each recording in half-octave bands from 100 Hz, the
difference enrollment minus probe (overall level removed) and its RMS over the bands; with --results, also what the
whole colour did to the whole fit's judged similarity in those runs (unguarded_full_colour minus unguarded_pack_only,
on the 0..1 scale), and the correlation of the two over the speakers.

    python bench/recording_channels.py [--voices DIR] [--results voice_similarity_s33_base1,voice_similarity_s33_t61]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import correlation, write_result  # noqa: E402
from bench.voice_similarity import RESULTS, ROOT, read_24k  # noqa: E402

RATE = 24000
FRAME, HOP = 1024, 512
BAND_EDGES_HZ = 100.0 * 2.0 ** (np.arange(15) / 2)  # half-octave bands, 100 Hz to 12.8 kHz
SPEECH_SHARE = 0.5  # the louder half of the frames stands for the speech


def band_levels_db(audio: np.ndarray) -> np.ndarray:
    """Long-term level (dB) of each half-octave band below Nyquist over the louder frames, overall level removed."""
    frames = np.lib.stride_tricks.sliding_window_view(audio, FRAME)[::HOP] * np.hanning(FRAME)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    energy = power.sum(axis=1)
    power = power[energy >= np.quantile(energy, 1.0 - SPEECH_SHARE)]
    freqs = np.fft.rfftfreq(FRAME, 1.0 / RATE)
    bands = [(low, high) for low, high in zip(BAND_EDGES_HZ[:-1], BAND_EDGES_HZ[1:], strict=True) if high <= RATE / 2]
    levels = np.array([10 * np.log10(power[:, (freqs >= low) & (freqs < high)].mean() + 1e-12) for low, high in bands])
    return levels - levels.mean()


def colour_effects(results: list[str]) -> dict[str, float]:
    """Per speaker, the mean over `results` of what the whole colour added to the whole fit's similarity (0..1)."""
    effects: dict[str, list[float]] = {}
    for name in results:
        for row in json.loads((RESULTS / f"{name}.json").read_text())["speakers"]:
            if "unguarded_full_colour" in row:
                change = row["unguarded_full_colour"]["normalised"] - row["unguarded_pack_only"]["normalised"]
                effects.setdefault(row["speaker"], []).append(change)
    return {speaker: float(np.mean(changes)) for speaker, changes in effects.items()}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voices", type=Path, default=ROOT / "tests" / "data" / "voices")
    parser.add_argument("--results", default="", help="comma-separated voice_similarity runs made with --unguarded")
    parser.add_argument("--out", default="recording_channels", help="results name under bench/results/")
    args = parser.parse_args(argv)

    effects = colour_effects([name for name in args.results.split(",") if name])
    rows = []
    for enroll in sorted(args.voices.glob("*_enroll.wav")):
        speaker = enroll.name[: -len("_enroll.wav")]
        difference = band_levels_db(read_24k(enroll)) - band_levels_db(read_24k(args.voices / f"{speaker}_probe.wav"))
        difference -= difference.mean()
        row = {
            "speaker": speaker,
            "enroll_minus_probe_db": [round(float(d), 1) for d in difference],
            "rms_difference_db": round(float(np.sqrt(np.mean(difference**2))), 2),
            "whole_colour_similarity_change": round(effects[speaker], 3) if speaker in effects else None,
        }
        rows.append(row)
        print(f"{speaker:14s} RMS {row['rms_difference_db']:4.1f} dB  colour "
              f"{row['whole_colour_similarity_change'] if effects else '-'}  {row['enroll_minus_probe_db']}")
    paired = [row for row in rows if row["whole_colour_similarity_change"] is not None]
    summary = {
        "median_rms_difference_db": round(float(np.median([row["rms_difference_db"] for row in rows])), 2),
        "correlation_rms_vs_colour_change": round(correlation(
            np.array([row["rms_difference_db"] for row in paired]),
            np.array([row["whole_colour_similarity_change"] for row in paired]),
        ), 3) if len(paired) > 2 else None,
    }
    write_result(args.out, {
        "what": "enrollment minus probe long-term spectrum (half-octave bands from 100 Hz, louder half of the frames, "
                "overall level removed) and what the whole colour did to the whole fit's judged similarity",
        "band_edges_hz": [round(float(edge)) for edge in BAND_EDGES_HZ],
        "results": args.results,
        "speakers": rows,
        "summary": summary,
    })
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
