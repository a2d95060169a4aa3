"""Which shape of a voice's colour buys the most likeness for the least loss of quality?

A fitted voice's colour (synth/voice_colour.py) raises judged similarity and, on average, lowers
P.835 DNSMOS. Scaling the whole curve down (what the colour guard does) trades one for the other
along a line. This asks whether a differently shaped curve does better than that line: narrower
limits, a narrower band, more smoothing, the spectral tilt alone, or the served curve without its
tilt. The colour is a filter after the engine, so every variant is applied to the same renders of
the benchmark's three sentences (bench/voice_similarity.py's), with each speaker's served pack and
per-layer timbre from a run's --save-packs folder (or the nearest stock voice without one). Each
variant whole, and with --guarded also behind the colour guard (synth/fit/colour_fit.py, no
deadline), as enrollment would serve it: with the served packs of a run, the "served_guarded" row
replays that run's served voices.

    python bench/colour_variants.py [--packs DIR] [--guarded] [--speakers A,B] [--out colour_variants]
    python bench/colour_variants.py --merge shard1,shard2 --out colour_variants
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import parse_replay, write_replay  # noqa: E402
from bench.voice_similarity import enrolled_target, score_output, served_style, speak, speakers_and_probes  # noqa: E402

# name -> keywords of voice_colour.colour_gains and the share of the curve applied. "served" is what synthesis
# uses now (250-4000 Hz, +-6 dB since colour_variants_s23_fitted.json); "wide_12db" what it used before.
WIDE = {"low_hz": 100.0, "top_hz": 7500.0}
VARIANTS: dict[str, tuple[dict[str, float], float]] = {
    "served": ({}, 1.0),
    "wide_12db": ({**WIDE, "max_boost_db": 12.0, "max_cut_db": 12.0}, 1.0),
    "half": ({**WIDE, "max_boost_db": 12.0, "max_cut_db": 12.0}, 0.5),
    "limit_6db": ({**WIDE, "max_boost_db": 6.0, "max_cut_db": 6.0}, 1.0),
    "limit_3db": ({**WIDE, "max_boost_db": 3.0, "max_cut_db": 3.0}, 1.0),
    "band_250_4000": ({"low_hz": 250.0, "top_hz": 4000.0, "max_boost_db": 12.0, "max_cut_db": 12.0}, 1.0),
    "band_250_4000_limit_6db": ({"low_hz": 250.0, "top_hz": 4000.0, "max_boost_db": 6.0, "max_cut_db": 6.0}, 1.0),
    "band_200_5000_limit_6db": ({"low_hz": 200.0, "top_hz": 5000.0, "max_boost_db": 6.0, "max_cut_db": 6.0}, 1.0),
    "limit_8db": ({**WIDE, "max_boost_db": 8.0, "max_cut_db": 8.0}, 1.0),
    "smooth_9": ({**WIDE, "max_boost_db": 12.0, "max_cut_db": 12.0, "smooth_bands": 9}, 1.0),
    "smooth_21": ({**WIDE, "max_boost_db": 12.0, "max_cut_db": 12.0, "smooth_bands": 21}, 1.0),
}


def tilt_only(gains: np.ndarray) -> np.ndarray:
    """The straight line (log gain against log frequency) nearest `gains` inside the colour's band."""
    from synth import voice_colour

    centres = voice_colour.band_centres_hz()
    inside = (centres >= voice_colour.LOW_HZ) & (centres <= voice_colour.TOP_HZ)
    x = np.log(np.clip(centres, voice_colour.LOW_HZ, voice_colour.TOP_HZ))
    slope, intercept = np.polyfit(x[inside], gains[inside], 1)
    line = slope * x + intercept
    return np.asarray(line - line[inside].mean(), dtype=np.float64)


def variant_gains(recording: np.ndarray, render: np.ndarray) -> dict[str, np.ndarray]:
    from synth import voice_colour

    out = {name: share * voice_colour.colour_gains(recording, render, **kwargs)  # type: ignore[arg-type]
           for name, (kwargs, share) in VARIANTS.items()}
    out["tilt_only"] = tilt_only(out["wide_12db"])
    # The served curve without its broad tilt: a microphone or room colours a recording mostly by tilt.
    out["served_without_tilt"] = out["served"] - tilt_only(out["served"])
    return out


def summarise(rows: list[dict]) -> dict[str, object]:  # type: ignore[type-arg]
    names = [name for name in rows[0]["variants"]]
    summary: dict[str, object] = {"speakers": len(rows)}
    for name in names:
        scores = [row["variants"][name] for row in rows]
        summary[name] = {
            "mean_normalised": round(float(np.mean([s["normalised"] for s in scores])), 4),
            "top1": f"{sum(bool(s['top1']) for s in scores)}/{len(scores)}",
            **{f"mean_{k}": round(float(np.mean([s[k] for s in scores])), 3)
               for k in ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808")},
        }
    none = summary["none"]
    assert isinstance(none, dict)
    for name in names:
        entry = summary[name]
        assert isinstance(entry, dict)
        gain = entry["mean_normalised"] - none["mean_normalised"]
        loss = none["mean_dnsmos_ovrl"] - entry["mean_dnsmos_ovrl"]
        # likeness bought per point of P.835 lost: higher is a better trade (inf: nothing lost)
        entry["likeness_per_dnsmos_lost"] = round(gain / loss, 2) if loss > 0 else None
    if all(row.get("guard_tried") for row in rows):
        summary["colour_guard_tolerance"] = {
            name: {str(tolerance): replay_guard(rows, name, tolerance) for tolerance in REPLAY_TOLERANCES}
            for name in rows[0]["guard_tried"]
        }
    return summary


REPLAY_TOLERANCES = (0.02, 0.05, 0.08, 0.12, 0.2)  # the colour guard runs with colour_fit.TOLERANCE


def replay_guard(rows: list[dict], name: str, tolerance: float) -> dict[str, object]:  # type: ignore[type-arg]
    """The colour guard's choice with another tolerance, from the qualities it measured (each share's benchmark
    scores were recorded), and the mean of what it would serve. Valid for tolerances at or above the one the
    guard ran with (it stops at the first share that passes)."""
    chosen = []
    for row in rows:
        record = row["guard_tried"][name]
        share = next((s for s, q in record["tried"] if q >= record["start"] - tolerance), 0.0)
        chosen.append(row["variants"]["none" if share == 0.0 else name if share == 1.0 else f"{name}@{share}"])
    return {
        "mean_normalised": round(float(np.mean([s["normalised"] for s in chosen])), 4),
        "top1": f"{sum(bool(s['top1']) for s in chosen)}/{len(chosen)}",
        "mean_dnsmos_ovrl": round(float(np.mean([s["dnsmos_ovrl"] for s in chosen])), 3),
        "mean_dnsmos_p808": round(float(np.mean([s["dnsmos_p808"] for s in chosen])), 3),
    }


def main(argv: list[str]) -> None:
    def add_options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--guarded", action="store_true",
                            help="also each whole variant behind the colour guard (the share enrollment would keep)")
        parser.add_argument("--variants", default="", help="comma-separated subset of the variants ('served' always)")

    # Without --packs, the stock voices are coloured.
    args = parse_replay(argv, __doc__, "colour_variants", summarise, add_options, packs_needed=lambda args: False)
    if args is None:
        return

    import torch

    torch.set_num_threads(1)
    from synth import voice_colour
    from synth.engines.kokoro import KokoroEngine
    from synth.fit import nearest_stock_pack
    from synth.fit.colour_fit import SHARES, MeasuredColour, keep_clean_share, measure_colour

    started = time.perf_counter()
    chosen, probes = speakers_and_probes(args.voices, args.speakers)
    wanted = {"served", *(name for name in args.variants.split(",") if name)} if args.variants else set()
    engine = KokoroEngine(threads=1)
    rows = []
    for speaker in chosen:
        lang, target = enrolled_target(args.voices, speaker)
        fitted = served_style(args.packs, speaker, nearest_stock_pack(target)[1])
        measured = measure_colour(target, fitted.pack, fitted.layers)
        plain = speak(engine, fitted, lang)
        scored: dict[str, dict[str, object]] = {"none": score_output(plain, probes, speaker)}
        kept: dict[str, float] = {}
        guard_tried: dict[str, dict[str, object]] = {}
        for name, gains in variant_gains(target.logmel_mean, measured.render_mean).items():
            if wanted and name not in wanted:
                continue
            variant = MeasuredColour(gains, measured.render_mean, measured.renders)
            scored[name] = score_output(voice_colour.apply(variant.taps(), plain), probes, speaker)
            if args.guarded and VARIANTS.get(name, ({}, 1.0))[1] == 1.0:
                # What enrollment would serve with this shape: the colour guard's share of it.
                guarded = keep_clean_share(variant)
                assert guarded.guard is not None
                kept[name] = guarded.guard.scale
                guard_tried[name] = {"start": guarded.guard.start_quality, "tried": guarded.guard.tried}
                scored[f"{name}_guarded"] = score_output(voice_colour.apply(guarded.taps, plain), probes, speaker)
                for share in SHARES[1:]:  # every share, so that other tolerances can be replayed
                    scored[f"{name}@{share}"] = score_output(voice_colour.apply(variant.taps(share), plain), probes,
                                                             speaker)
        rows.append({"speaker": speaker, "packs": "served fit" if args.packs else "nearest stock",
                     "guard_kept": kept, "guard_tried": guard_tried, "variants": scored})
        brief = {name: (s["normalised"], s["dnsmos_ovrl"]) for name, s in scored.items()}
        print(f"{speaker} ({time.perf_counter() - started:.0f} s): {brief}", file=sys.stderr, flush=True)
    write_replay(args.out, {
        "what": "one speaker's renders of the benchmark's sentences with each shape of colour, whole; judge "
        "similarity on bench/voice_similarity.py's 0..1 scale, top-1 among all probes, DNSMOS",
        "variants": {name: {"colour_gains": kwargs, "share": share} for name, (kwargs, share) in VARIANTS.items()}
        | {"tilt_only": {"colour_gains": "wide_12db, then its least-squares line over log frequency", "share": 1.0},
           "served_without_tilt": {"colour_gains": "served, less its least-squares line over log frequency",
                                   "share": 1.0}},
        "packs": str(args.packs) if args.packs else "nearest stock voice",
    }, rows, summarise, started)


if __name__ == "__main__":
    main(sys.argv[1:])
