"""Find the weight files in a models directory and build the PyTorch models from them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

from synth.engines.gptsovits.checkpoint import (
    CheckpointError,
    load_gpt_checkpoint,
    load_hubert_dir,
    load_sovits_checkpoint,
)
from synth.engines.gptsovits.hubert import Hubert, HubertConfig
from synth.engines.gptsovits.sovits import SovitsConfig, SynthesizerV2
from synth.engines.gptsovits.t2s import T2SConfig, Text2Semantic

# The official pretrained layout (GPT_SoVITS/pretrained_models/...).
GPT_FILE = "gsv-v2final-pretrained/s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt"
SOVITS_FILE = "gsv-v2final-pretrained/s2G2333k.pth"
HUBERT_DIR = "chinese-hubert-base"
BERT_DIR = "chinese-roberta-wwm-ext-large"


@dataclasses.dataclass(frozen=True)
class ModelFiles:
    gpt: Path
    sovits: Path
    hubert_dir: Path
    bert_dir: Path | None = None

    @classmethod
    def find(cls, models_dir: Path) -> ModelFiles:
        """The official file names first; otherwise exactly one *.ckpt and one *.pth anywhere below."""
        models_dir = Path(models_dir)
        if not models_dir.is_dir():
            raise CheckpointError(
                f"models directory {models_dir} does not exist; "
                f"run `voxroom models pull gpt-sovits-v2 --dir {models_dir}`"
            )
        gpt = models_dir / GPT_FILE
        sovits = models_dir / SOVITS_FILE
        if not gpt.exists():
            gpt = _only(models_dir, "*.ckpt", "GPT (.ckpt)")
        if not sovits.exists():
            sovits = _only(models_dir, "*.pth", "SoVITS (.pth)")
        hubert = models_dir / HUBERT_DIR
        if not (hubert / "config.json").exists():
            raise CheckpointError(
                f"{hubert} is missing: the cnhubert feature extractor (config.json, pytorch_model.bin)"
            )
        bert = models_dir / BERT_DIR
        return cls(gpt=gpt, sovits=sovits, hubert_dir=hubert, bert_dir=bert if bert.is_dir() else None)


def _only(root: Path, pattern: str, what: str) -> Path:
    found = sorted(p for p in root.rglob(pattern) if p.is_file())
    if len(found) != 1:
        raise CheckpointError(f"expected one {what} file under {root}, found {len(found)}")
    return found[0]


def _load_strict(
    model: nn.Module, state: dict[str, torch.Tensor], source: Path, optional: tuple[str, ...] = ()
) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.startswith(optional)]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: weights do not match the architecture (missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    wrong = [k for k in state if state[k].shape != expected[k].shape]
    if wrong:
        raise CheckpointError(f"{source}: shape mismatch for {wrong[:5]}")
    model.load_state_dict(state, strict=False)


@dataclasses.dataclass
class TorchModels:
    t2s: Text2Semantic
    sovits: SynthesizerV2
    hubert: Hubert
    max_sec: float


def load_torch_models(files: ModelFiles) -> TorchModels:
    gpt = load_gpt_checkpoint(files.gpt)
    t2s = Text2Semantic(T2SConfig.from_checkpoint(gpt.config))
    _load_strict(t2s, gpt.state, files.gpt)

    sv = load_sovits_checkpoint(files.sovits)
    n_symbols = sv.state["enc_p.text_embedding.weight"].shape[0]
    sovits = SynthesizerV2(SovitsConfig.from_hparams(sv.hps, n_symbols))
    _load_strict(
        sovits,
        sv.state,
        files.sovits,
        optional=(
            "quantizer.vq.layers.0._codebook.embed_avg",
            "quantizer.vq.layers.0._codebook.cluster_size",
            "quantizer.vq.layers.0._codebook.inited",
        ),
    )

    hb = load_hubert_dir(files.hubert_dir)
    try:
        hubert = Hubert(HubertConfig.from_json(hb.config))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{files.hubert_dir}/config.json: {exc}") from exc
    _load_strict(hubert, hb.state, files.hubert_dir, optional=("masked_spec_embed",))

    for model in (t2s, sovits, hubert):
        model.eval()
    return TorchModels(t2s=t2s, sovits=sovits, hubert=hubert, max_sec=54.0)
