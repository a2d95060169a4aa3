"""Would a DNSMOS term in the fit's loss make fitted voices cleaner, or only fool DNSMOS?

From the whole fits a voice_similarity run saved (--save-packs), a few more gradient steps on
the per-layer timbre with the fit's own speaker loss minus `weight` x DNSMOS OVRL of the render
(synth.fit.quality_torch, the training sentences). Before and after, on the benchmark's
evaluation sentences: the judge's similarity, DNSMOS OVRL (the optimised network, on other
sentences) and DNSMOS P.808 (a second network the steps never see), as the judge is kept out of
the fit for similarity.

    python bench/voice_similarity.py --unguarded --save-packs DIR --out NAME
    python bench/dnsmos_in_loss.py --packs DIR --results NAME --speakers en_367,en_1688 [--steps 6]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.voice_similarity import RESULTS, read_24k, saved_fits, saved_run, score_output, speak  # noqa: E402


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packs", type=Path, required=True, help="the --save-packs folder of a voice_similarity run")
    parser.add_argument("--results", required=True, help="that run's results name under bench/results/")
    parser.add_argument("--voices", type=Path, default=Path(__file__).resolve().parents[1] / "tests/data/voices")
    parser.add_argument("--speakers", required=True, help="comma-separated")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--weight", type=float, default=0.5, help="loss weight of DNSMOS OVRL (1..5 scale)")
    parser.add_argument("--lr", type=float, default=0.02, help="Adam step in stock-spread units, as the fit's")
    parser.add_argument("--out", default="dnsmos_in_loss")
    args = parser.parse_args(argv)

    saved, probes, engine = saved_run(args.results, args.voices, args.speakers)
    import torch

    from synth.enroll import features, quality
    from synth.enroll.contract import FittedStyle
    from synth.fit import kokoro_torch, quality_torch
    from synth.fit.style_fit import FitSettings, _speaker_loss, stock_space, training_tokens

    settings = FitSettings()
    sigma = stock_space(settings.principal_dims).sigma[:128]

    def evaluate(fitted: FittedStyle, speaker: str, lang: str) -> dict[str, object]:
        return score_output(speak(engine, fitted, lang), probes, speaker)

    rows = []
    for saved_row, lang, start_pack, offered in saved_fits(args.packs, saved):
        speaker = saved_row["speaker"]
        if offered.layers is None:
            continue
        _, analysis = quality.assess(read_24k(args.voices / f"{speaker}_enroll.wav"))
        target = features.extract(analysis, lang)
        voiceprint = torch.as_tensor(target.voiceprint, dtype=torch.float32)
        voiceprint = voiceprint / voiceprint.norm()
        pack, layers = offered.pack, offered.layers
        z = torch.tensor(layers / sigma.numpy(), requires_grad=True)
        opt = torch.optim.Adam([z], lr=args.lr)
        sentences = training_tokens(lang)
        row: dict[str, object] = {"speaker": speaker, "stock": evaluate(FittedStyle(start_pack), speaker, lang)}
        row["whole_fit"] = evaluate(offered, speaker, lang)
        started, trained_ovrl = time.process_time(), []
        for step in range(args.steps):
            tokens = sentences[step % len(sentences)]
            opt.zero_grad()
            audio = kokoro_torch.run(tokens, kokoro_torch.style_row(pack, len(tokens)), layers=z * sigma).audio
            _, speaker_loss = _speaker_loss(audio, target, voiceprint, settings)
            ovrl = quality_torch.overall(audio)
            (speaker_loss - args.weight * ovrl + settings.w_layer_prior * (z**2).sum()).backward()
            opt.step()
            trained_ovrl.append(round(float(ovrl.detach()), 3))
        row["steps_cpu_s"] = round(time.process_time() - started, 1)
        row["ovrl_on_training_sentences"] = trained_ovrl
        row["with_dnsmos_steps"] = evaluate(FittedStyle(pack, (z.detach() * sigma).numpy().astype(np.float32)),
                                            speaker, lang)
        rows.append(row)
        print(json.dumps(row), flush=True)

    def mean_change(key: str) -> float:
        return round(float(np.mean([r["with_dnsmos_steps"][key] - r["whole_fit"][key] for r in rows])), 3)  # type: ignore[index]

    summary = {key: mean_change(key) for key in ("normalised", "dnsmos_ovrl", "dnsmos_p808")}
    result = {"steps": args.steps, "weight": args.weight, "lr": args.lr, "results": args.results,
              "mean_change_from_whole_fit": summary, "speakers": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
