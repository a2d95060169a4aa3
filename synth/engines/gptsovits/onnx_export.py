"""Export the five sub-graphs to ONNX, every one with a real (dynamic) batch axis.

    python -m synth.engines.gptsovits.onnx_export --models DIR --out DIR/onnx

- prefill.onnx: phones, phone_lens, bert, prompt, prompt_lens -> logits, keys, values, key_valid
- step.onnx: tokens, positions, mask_bias, k_0, v_0, ... k_{L-1}, v_{L-1} -> logits, new_k, new_v
  (logits only: sampling stays on the host, so parameters vary per request and per row)
- vocode.onnx: codes, code_lens, phones, phone_lens, ge, noise -> audio
- content.onnx: 16 kHz audio -> prompt tokens (cnhubert + ssl_proj + codebook)
- timbre.onnx: reference linear spectrogram -> timbre vector
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import torch
from torch import nn

from synth.engines.gptsovits.backend import ContentModel
from synth.engines.gptsovits.loader import ModelFiles, TorchModels, load_torch_models
from synth.engines.gptsovits.t2s import BERT_DIM, Text2Semantic

OPSET = 17
GRAPHS = ("prefill", "step", "vocode", "content", "timbre")
MANIFEST = "manifest.json"


class _Prefill(nn.Module):
    def __init__(self, t2s: Text2Semantic) -> None:
        super().__init__()
        self.t2s = t2s

    def forward(self, phones, phone_lens, bert, prompt, prompt_lens):  # type: ignore[no-untyped-def]
        return self.t2s.prefill(phones, phone_lens, bert, prompt, prompt_lens)


class _Step(nn.Module):
    def __init__(self, t2s: Text2Semantic) -> None:
        super().__init__()
        self.t2s = t2s

    def forward(self, tokens, positions, mask_bias, *caches):  # type: ignore[no-untyped-def]
        return self.t2s.step(tokens, positions, mask_bias, list(caches))


class _Vocode(nn.Module):
    def __init__(self, models: TorchModels) -> None:
        super().__init__()
        self.sovits = models.sovits

    def forward(self, codes, code_lens, phones, phone_lens, ge, noise):  # type: ignore[no-untyped-def]
        return self.sovits.decode(codes, code_lens, phones, phone_lens, ge, noise)[:, 0]


class _Timbre(nn.Module):
    def __init__(self, models: TorchModels) -> None:
        super().__init__()
        self.sovits = models.sovits

    def forward(self, spec):  # type: ignore[no-untyped-def]
        lens = (spec[:, 0, :] * 0 + 1).sum(dim=1).to(torch.int64)  # full length, kept dynamic
        return self.sovits.timbre(spec, lens)


def export_all(models: TorchModels, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    t = models.t2s.config
    s = models.sovits.config
    layers, heads, hd = t.n_layer, t.head, t.hidden_dim // t.head
    b, tx, ty, slots = 2, 7, 5, 12
    i64 = torch.int64

    prefill_args = (
        torch.randint(1, t.phoneme_vocab_size, (b, tx)),
        torch.tensor([tx, tx - 2], dtype=i64),
        torch.zeros(b, BERT_DIM, tx),
        torch.randint(0, 1024, (b, ty)),
        torch.tensor([ty, ty - 1], dtype=i64),
    )
    _export(
        _Prefill(models.t2s),
        prefill_args,
        out / "prefill.onnx",
        ["phones", "phone_lens", "bert", "prompt", "prompt_lens"],
        ["logits", "keys", "values", "key_valid"],
        {
            "phones": {0: "batch", 1: "text"},
            "phone_lens": {0: "batch"},
            "bert": {0: "batch", 2: "text"},
            "prompt": {0: "batch", 1: "prompt"},
            "prompt_lens": {0: "batch"},
            "logits": {0: "batch"},
            "keys": {0: "batch", 4: "slots"},
            "values": {0: "batch", 3: "slots"},
            "key_valid": {0: "batch", 1: "slots"},
        },
    )

    caches = []
    cache_names = []
    cache_axes: dict[str, dict[int, str]] = {}
    for layer in range(layers):
        caches += [torch.randn(b, heads, hd, slots), torch.randn(b, heads, slots, hd)]
        cache_names += [f"k_{layer}", f"v_{layer}"]
        cache_axes[f"k_{layer}"] = {0: "batch", 3: "slots"}
        cache_axes[f"v_{layer}"] = {0: "batch", 2: "slots"}
    step_args = (
        torch.randint(0, 1024, (b,)),
        torch.tensor([3, 9], dtype=i64),
        torch.zeros(b, slots),
        *caches,
    )
    _export(
        _Step(models.t2s),
        step_args,
        out / "step.onnx",
        ["tokens", "positions", "mask_bias", *cache_names],
        ["logits", "new_k", "new_v"],
        {
            "tokens": {0: "batch"},
            "positions": {0: "batch"},
            "mask_bias": {0: "batch", 1: "slots"},
            **cache_axes,
            "logits": {0: "batch"},
            "new_k": {0: "batch"},
            "new_v": {0: "batch"},
        },
    )

    n, p = 6, 9
    vocode_args = (
        torch.randint(0, 1024, (b, n)),
        torch.tensor([n, n - 2], dtype=i64),
        torch.randint(1, s.n_symbols, (b, p)),
        torch.tensor([p, p - 3], dtype=i64),
        torch.randn(b, s.gin_channels, 1),
        torch.randn(b, s.inter_channels, 2 * n),
    )
    _export(
        _Vocode(models),
        vocode_args,
        out / "vocode.onnx",
        ["codes", "code_lens", "phones", "phone_lens", "ge", "noise"],
        ["audio"],
        {
            "codes": {0: "batch", 1: "tokens"},
            "code_lens": {0: "batch"},
            "phones": {0: "batch", 1: "phones"},
            "phone_lens": {0: "batch"},
            "ge": {0: "batch"},
            "noise": {0: "batch", 2: "frames"},
            "audio": {0: "batch", 1: "samples"},
        },
    )

    _export(
        ContentModel(models),
        (torch.randn(1, 16000),),
        out / "content.onnx",
        ["wav16k"],
        ["codes"],
        {"wav16k": {0: "batch", 1: "samples"}, "codes": {0: "batch", 1: "tokens"}},
    )
    bins = s.filter_length // 2 + 1
    _export(
        _Timbre(models),
        (torch.rand(1, bins, 50),),
        out / "timbre.onnx",
        ["spec"],
        ["ge"],
        {"spec": {0: "batch", 2: "frames"}, "ge": {0: "batch"}},
    )
    manifest = {"graphs": list(GRAPHS), "n_layer": layers, "opset": OPSET}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return out


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str], axes: dict) -> None:  # type: ignore[type-arg]
    module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python ints derived from shapes
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Export GPT-SoVITS v2 sub-graphs to ONNX")
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    export_all(load_torch_models(ModelFiles.find(args.models)), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
