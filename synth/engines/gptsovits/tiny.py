"""Build tiny, randomly initialised GPT-SoVITS v2 models in the official file layouts.

    python -m synth.engines.gptsovits.tiny --out DIR

Same architecture as the real models (fewer layers and channels where the format allows;
the frame rates, hop sizes, vocabularies and 768-dim content features stay real), saved
exactly as the official trainer saves them, so tests exercise the same loader as real
weights. `--full-size` writes the real dimensions (24 layers, width 512) for benchmarks.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import cast

import torch

from synth.engines.gptsovits.bert import Bert, BertConfig
from synth.engines.gptsovits.checkpoint import unfold_weight_norm
from synth.engines.gptsovits.hparams import HParams, pickled_as_official_name
from synth.engines.gptsovits.hubert import Hubert, HubertConfig
from synth.engines.gptsovits.loader import BERT_DIR, GPT_FILE, HUBERT_DIR, SOVITS_FILE
from synth.engines.gptsovits.sovits import SovitsConfig, SynthesizerV2
from synth.engines.gptsovits.sovits_modules import Generator, ResBlock, WaveNet
from synth.engines.gptsovits.t2s import T2SConfig, Text2Semantic

TINY_T2S = T2SConfig(embedding_dim=64, hidden_dim=64, head=4, n_layer=2, linear_units=128)
TINY_SOVITS = SovitsConfig(
    inter_channels=32,
    hidden_channels=32,
    filter_channels=64,
    n_heads=2,
    n_layers=2,
    resblock_kernel_sizes=(3,),
    resblock_dilation_sizes=((1, 3, 5),),
    upsample_initial_channel=64,
    gin_channels=64,
)
TINY_HUBERT = HubertConfig(
    hidden_size=768,  # the content width is part of the interface (ssl_proj reads 768 channels)
    num_hidden_layers=1,
    num_attention_heads=4,
    intermediate_size=128,
    conv_dim=(32,) * 7,
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=16,
)


def _weight_normed_keys(model: SynthesizerV2) -> list[str]:
    keys = []
    for name, module in model.named_modules():
        if isinstance(module, WaveNet):
            keys.append(f"{name}.cond_layer.weight")
            keys += [f"{name}.in_layers.{i}.weight" for i in range(len(module.in_layers))]
            keys += [f"{name}.res_skip_layers.{i}.weight" for i in range(len(module.res_skip_layers))]
        elif isinstance(module, Generator):
            keys += [f"{name}.ups.{i}.weight" for i in range(len(module.ups))]
            for i, block in enumerate(module.resblocks):
                for j in range(len(cast(ResBlock, block).convs1)):
                    keys += [
                        f"{name}.resblocks.{i}.convs1.{j}.weight",
                        f"{name}.resblocks.{i}.convs2.{j}.weight",
                    ]
    return keys


def _sovits_hparams(c: SovitsConfig) -> HParams:
    return HParams(
        train={"segment_size": 20480, "fp16_run": True},
        data={
            "max_wav_value": 32768.0,
            "sampling_rate": c.sampling_rate,
            "filter_length": c.filter_length,
            "hop_length": c.hop_length,
            "win_length": c.win_length,
            "n_mel_channels": 128,
            "add_blank": True,
            "n_speakers": 300,
            "cleaned_text": True,
        },
        model={
            "inter_channels": c.inter_channels,
            "hidden_channels": c.hidden_channels,
            "filter_channels": c.filter_channels,
            "n_heads": c.n_heads,
            "n_layers": c.n_layers,
            "kernel_size": c.kernel_size,
            "p_dropout": 0.1,
            "resblock": "1",
            "resblock_kernel_sizes": list(c.resblock_kernel_sizes),
            "resblock_dilation_sizes": [list(d) for d in c.resblock_dilation_sizes],
            "upsample_rates": list(c.upsample_rates),
            "upsample_initial_channel": c.upsample_initial_channel,
            "upsample_kernel_sizes": list(c.upsample_kernel_sizes),
            "n_layers_q": 3,
            "use_spectral_norm": False,
            "gin_channels": c.gin_channels,
            "semantic_frame_rate": "25hz",
            "freeze_quantizer": True,
            "version": "v2",
        },
        s2_ckpt_dir="logs/s2",
        content_module="cnhubert",
    )


def _spread_weights(model: torch.nn.Module, seed: int) -> None:
    """Random weights with enough spread that the models do not collapse to constants."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2 and "norm" not in name:
                p.copy_(torch.randn(p.shape, generator=gen) * (1.0 / max(1, p[0].numel()) ** 0.5))


# Characters the tiny BERT knows; others map to [UNK] as unknown characters do in the real vocabulary.
TINY_BERT_CHARS = "你好世界今天气很我们一起去买雨伞这是段参考录音第句话三来得晚些出走吧"


def _build_bert(directory: Path, seed: int) -> None:
    """A tiny BERT in the chinese-roberta-wwm-ext-large layout (1024-dim output is part of the interface)."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ",", ".", "!", "?", "…", "-", *TINY_BERT_CHARS]
    config = BertConfig(vocab_size=len(vocab), num_hidden_layers=3, num_attention_heads=4, intermediate_size=64)
    torch.manual_seed(seed)
    model = Bert(config)
    directory.mkdir(parents=True, exist_ok=True)
    state = {f"bert.{k}": v for k, v in model.state_dict().items()}
    state["cls.predictions.bias"] = torch.zeros(len(vocab))  # pre-training head, present in the real file
    torch.save(state, directory / "pytorch_model.bin")
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    fields = dataclasses.asdict(config) | {"model_type": "bert", "architectures": ["BertForMaskedLM"]}
    (directory / "config.json").write_text(json.dumps(fields, indent=2))


def build(out: Path, seed: int = 0, full_size: bool = False, with_bert: bool = False) -> None:
    t2s_config = T2SConfig() if full_size else TINY_T2S
    sovits_config = SovitsConfig() if full_size else TINY_SOVITS
    hubert_config = HubertConfig() if full_size else TINY_HUBERT
    torch.manual_seed(seed)

    t2s = Text2Semantic(t2s_config)
    _spread_weights(t2s, seed)
    gpt_path = out / GPT_FILE
    gpt_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "weight": {f"model.{k}": v.half() for k, v in t2s.state_dict().items()},
            "config": {
                "model": t2s_config.to_checkpoint(),
                "data": {"max_sec": 54, "pad_val": 1024},
                "train": {"seed": seed},
            },
            "info": "tiny-random" if not full_size else "full-size-random",
        },
        gpt_path,
    )

    sovits = SynthesizerV2(sovits_config)
    _spread_weights(sovits, seed + 1)
    state = unfold_weight_norm(sovits.state_dict(), _weight_normed_keys(sovits))
    with pickled_as_official_name():
        torch.save(
            {
                "weight": {k: v.half() for k, v in state.items()},
                "config": _sovits_hparams(sovits_config),
                "info": "0epoch_0iteration",
            },
            out / SOVITS_FILE,
        )

    hubert = Hubert(hubert_config)
    hubert_dir = out / HUBERT_DIR
    hubert_dir.mkdir(parents=True, exist_ok=True)
    hstate = unfold_weight_norm(hubert.state_dict(), ["encoder.pos_conv_embed.conv.weight"], dim=2)
    torch.save(hstate, hubert_dir / "pytorch_model.bin")
    config = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(hubert_config).items()}
    config.update(
        model_type="hubert",
        feat_extract_norm="group",
        do_stable_layer_norm=False,
        architectures=["HubertModel"],
    )
    (hubert_dir / "config.json").write_text(json.dumps(config, indent=2))
    preprocessor = {
        "feature_extractor_type": "Wav2Vec2FeatureExtractor",
        "feature_size": 1,
        "sampling_rate": 16000,
    }
    (hubert_dir / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
    if with_bert:
        _build_bert(out / BERT_DIR, seed + 2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--full-size", action="store_true", help="real dimensions (24 layers, width 512) with random weights"
    )
    parser.add_argument("--with-bert", action="store_true", help="also a tiny chinese-roberta-wwm-ext-large stand-in")
    args = parser.parse_args(argv)
    build(args.out, seed=args.seed, full_size=args.full_size, with_bert=args.with_bert)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
