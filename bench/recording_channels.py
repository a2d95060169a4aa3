"""How differently coloured is each reference speaker's enrollment recording from their probe?

The fit's colour matches the enrollment recording's long-term spectrum, microphone and room included, while the
benchmark judges the output against *_probe.wav, another recording of the same person. Where the two recordings
differ in colour, the colour can move the output away from the probe. Both recordings are measured as the colour
measures a recording (`voice_colour.speech_logmel_mean`: mean log-mel over the speech frames). This prints, per
speaker, the difference enrollment minus probe (overall level removed) in half-octave bands from 100 Hz, its RMS
over those bands and its RMS over the mel bands inside the colour's band (voice_colour.LOW_HZ to TOP_HZ, where the
colour acts); with --results, also what the whole colour did to the whole fit's judged similarity in those runs
(unguarded_full_colour minus unguarded_pack_only, on the 0..1 scale), and the correlation of that with each RMS
over the speakers.

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

BAND_EDGES_HZ = 100.0 * 2.0 ** (np.arange(15) / 2)  # half-octave bands, 100 Hz to 12.8 kHz
DB_PER_NEPER = 20.0 / np.log(10.0)  # log-mel values are natural-log magnitudes


def recording_difference_db(enroll: np.ndarray, probe: np.ndarray) -> np.ndarray:
    """Per mel band, the enrollment's speech spectrum minus the probe's, in dB, overall level removed."""
    from synth import voice_colour

    difference = DB_PER_NEPER * (voice_colour.speech_logmel_mean(enroll) - voice_colour.speech_logmel_mean(probe))
    return difference - difference.mean()


def half_octaves(per_mel_band: np.ndarray) -> np.ndarray:
    """Mean of the mel bands whose centres fall in each half-octave band (those holding any), level removed."""
    from synth import voice_colour

    centres = voice_colour.band_centres_hz()
    edges = zip(BAND_EDGES_HZ[:-1], BAND_EDGES_HZ[1:], strict=True)
    inside = [(centres >= low) & (centres < high) for low, high in edges]
    bands = np.array([per_mel_band[mask].mean() for mask in inside if mask.any()])
    return bands - bands.mean()


def in_colour_band(per_mel_band: np.ndarray) -> np.ndarray:
    """The mel bands where the colour acts (the curve is held flat outside), level removed."""
    from synth import voice_colour

    centres = voice_colour.band_centres_hz()
    band = per_mel_band[(centres >= voice_colour.LOW_HZ) & (centres <= voice_colour.TOP_HZ)]
    return band - band.mean()


def rms(values: np.ndarray) -> float:
    return round(float(np.sqrt(np.mean(values**2))), 2)


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
    from synth import voice_colour

    effects = colour_effects([name for name in args.results.split(",") if name])
    rows = []
    for enroll in sorted(args.voices.glob("*_enroll.wav")):
        speaker = enroll.name[: -len("_enroll.wav")]
        per_mel_band = recording_difference_db(read_24k(enroll), read_24k(args.voices / f"{speaker}_probe.wav"))
        difference = half_octaves(per_mel_band)
        row = {
            "speaker": speaker,
            "enroll_minus_probe_db": [round(float(d), 1) for d in difference],
            "rms_difference_db": rms(difference),
            "rms_difference_in_colour_band_db": rms(in_colour_band(per_mel_band)),
            "whole_colour_similarity_change": round(effects[speaker], 3) if speaker in effects else None,
        }
        rows.append(row)
        print(f"{speaker:14s} RMS {row['rms_difference_db']:4.1f} dB "
              f"(colour band {row['rms_difference_in_colour_band_db']:4.1f})"
              f"  colour {row['whole_colour_similarity_change'] if effects else '-'}  {row['enroll_minus_probe_db']}")
    paired = [row for row in rows if row["whole_colour_similarity_change"] is not None]
    changes = np.array([row["whole_colour_similarity_change"] for row in paired])
    summary: dict[str, object] = {
        "median_rms_difference_db": round(float(np.median([row["rms_difference_db"] for row in rows])), 2),
        "median_rms_difference_in_colour_band_db": round(
            float(np.median([row["rms_difference_in_colour_band_db"] for row in rows])), 2),
    }
    if len(paired) > 2:
        for key in ("rms_difference_db", "rms_difference_in_colour_band_db"):
            values = np.array([row[key] for row in paired])
            summary[f"correlation_{key}_vs_colour_change"] = correlation(values, changes)
    write_result(args.out, {
        "what": "enrollment minus probe speech spectrum as the colour measures it (voice_colour.speech_logmel_mean; "
                "half-octave bands from 100 Hz, and the mel bands where the colour acts; overall level removed), and "
                "what the whole colour did to the whole fit's judged similarity",
        "band_edges_hz": [round(float(edge)) for edge in BAND_EDGES_HZ],
        "colour_band_hz": [voice_colour.LOW_HZ, voice_colour.TOP_HZ],
        "results": args.results,
        "speakers": rows,
        "summary": summary,
    })
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
