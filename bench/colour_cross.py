"""How much of a voice's colour is the person, and how much the recording's microphone and room?

A fitted voice's colour (synth/voice_colour.py) matches the engine's long-term spectrum to the
recording's. The probe the benchmark scores against is another recording of the same person,
often through the same channel, so a colour can raise judged similarity by matching the channel
alone. This swaps colours between speakers, on their nearest stock voices (no style fit, so the
colour is the only change), with the whole curve (share 1.0, no quality guard):

- own: speaker i's renders coloured toward i's recording, scored against i's probe (what is served);
- other: i's renders coloured toward another speaker j's recording, scored against i's probe: if this
  gains as much as own, the colour's gain is generic ("sounds recorded"), not the person;
- mimic: the same, scored against j's probe: how far a colour alone moves a voice toward someone else.

    python bench/colour_cross.py [--voices DIR] [--out colour_cross]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.voice_similarity import RESULTS, normalised, read_24k, speak, speakers_and_probes  # noqa: E402


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voices", type=Path, default=ROOT / "tests" / "data" / "voices")
    parser.add_argument("--out", default="colour_cross", help="results name under bench/results/")
    args = parser.parse_args(argv)

    from synth import voice_colour
    from synth.engines.kokoro import KokoroEngine
    from synth.enroll import features, judge, quality
    from synth.fit import nearest_stock_pack
    from synth.fit.colour_fit import measure_colour

    started = time.perf_counter()
    speakers, probes = speakers_and_probes(args.voices, "")
    engine = KokoroEngine()
    targets, renders, render_means = {}, {}, {}
    for speaker in speakers:
        lang = speaker.split("_", 1)[0]
        _gate, analysis = quality.assess(read_24k(args.voices / f"{speaker}_enroll.wav"))
        targets[speaker] = features.extract(analysis, lang)
        _name, pack = nearest_stock_pack(targets[speaker])
        render_means[speaker] = measure_colour(targets[speaker], pack).render_mean  # the engine's own spectrum
        renders[speaker] = speak(engine, pack, lang)
        print(f"  {speaker}: rendered ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)

    def coloured_print(voice: str, recording: str) -> np.ndarray:
        """Judge embedding of `voice`'s renders coloured toward `recording`'s long-term spectrum."""
        gains = voice_colour.colour_gains(targets[recording].logmel_mean, render_means[voice])
        taps = voice_colour.design_filter(voice_colour.loudness_neutral(gains, render_means[voice]))
        return judge.embed_speech_of(voice_colour.apply(taps, renders[voice]), 24000)

    rows = []
    for voice in speakers:
        plain = judge.embed_speech_of(renders[voice], 24000)
        prints = {recording: coloured_print(voice, recording) for recording in speakers}
        others = [s for s in speakers if s != voice]
        row = {
            "speaker": voice,
            "none": normalised(judge.cosine(plain, probes[voice])),
            "own": normalised(judge.cosine(prints[voice], probes[voice])),
            "other_mean": float(np.mean([normalised(judge.cosine(prints[o], probes[voice])) for o in others])),
            # toward j: coloured toward j's recording against j's probe, less the plain voice against j's probe
            "mimic_gain_mean": float(np.mean([
                normalised(judge.cosine(prints[o], probes[o])) - normalised(judge.cosine(plain, probes[o]))
                for o in others
            ])),
            "top1_none": max(speakers, key=lambda s: judge.cosine(plain, probes[s])) == voice,
            "top1_own": max(speakers, key=lambda s: judge.cosine(prints[voice], probes[s])) == voice,
        }
        rows.append({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
        print(json.dumps(rows[-1]), flush=True)

    summary = {
        "speakers": len(rows),
        "mean_none": round(float(np.mean([r["none"] for r in rows])), 4),
        "mean_own": round(float(np.mean([r["own"] for r in rows])), 4),
        "mean_other": round(float(np.mean([r["other_mean"] for r in rows])), 4),
        "mean_mimic_gain": round(float(np.mean([r["mimic_gain_mean"] for r in rows])), 4),
        "top1_none": f"{sum(bool(r['top1_none']) for r in rows)}/{len(rows)}",
        "top1_own": f"{sum(bool(r['top1_own']) for r in rows)}/{len(rows)}",
        "wall_s": round(time.perf_counter() - started, 1),
    }
    result = {
        "what": "nearest stock voice of each speaker, coloured (share 1.0) toward its own or another speaker's "
        "recording; judge similarity on the 0..1 scale (bench/voice_similarity.py's)",
        "speakers": rows,
        "summary": summary,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
