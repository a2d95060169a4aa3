"""Reading the official GPT-SoVITS weight files without arbitrary unpickling.

Formats (as written by the official trainer):
- GPT stage `.ckpt`: a torch zip holding {"weight": state dict with keys prefixed "model.",
  "config": plain dict (model.n_layer, model.head, ...), "info": str}.
- SoVITS stage `.pth`: a torch zip holding {"weight": fp16 state dict without enc_q.*,
  "config": a pickled `utils.HParams`, "info": str}. Files of the v3/v4/Pro lines replace
  the first two bytes of the zip ("PK") with a version tag such as b"05".
- cnhubert: a Hugging Face style directory with config.json and pytorch_model.bin.

Everything is read with torch's weights-only unpickler, which builds tensors and plain
containers only; `utils.HParams` is mapped onto our own `HParams` and any other global
(a function, a class, `os.system`...) is refused with `CheckpointError`.
"""

from __future__ import annotations

import dataclasses
import io
import json
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from synth.engines.gptsovits.hparams import PICKLED_NAME, HParams

# Version tags that replace "PK" at the start of newer SoVITS files.
VERSION_TAGS = {
    b"00": "v1",
    b"01": "v2",
    b"02": "v3",
    b"03": "v3-lora",
    b"04": "v4-lora",
    b"05": "v2Pro",
    b"06": "v2ProPlus",
}
SUPPORTED_SOVITS_VERSIONS = ("v2",)


class CheckpointError(ValueError):
    """A weight file that is missing, malformed, unsafe or of an unsupported version."""


def read_torch_file(path: Path) -> tuple[Any, str | None]:
    """Unpickle a torch zip safely; returns (object, version tag or None when the file starts with PK)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror}") from exc
    if len(data) < 4:
        raise CheckpointError(f"{path} is not a torch checkpoint (too short)")
    tag = None
    if data[:2] != b"PK":
        tag = VERSION_TAGS.get(data[:2])
        if tag is None:
            raise CheckpointError(f"{path} is not a torch checkpoint (unknown header {data[:2]!r})")
        data = b"PK" + data[2:]
    try:
        with torch.serialization.safe_globals([(HParams, PICKLED_NAME)]):
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        reason = f"it names {found.group(1)}" if found else "unsupported pickle content"
        raise CheckpointError(f"{path} holds objects other than tensors and configs; refused: {reason}") from exc
    except (RuntimeError, EOFError, KeyError, ValueError) as exc:
        raise CheckpointError(f"{path} could not be read as a torch checkpoint: {exc}") from exc
    return obj, tag


def fold_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace weight-norm pairs (weight_g, weight_v) by the plain weight they stand for.

    The norm is taken over every axis but the one where g is not 1 (axis 0 for the
    SoVITS convolutions, axis 2 for cnhubert's positional convolution).
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for g_suffix, v_suffix in (
            (".weight_g", ".weight_v"),
            (".parametrizations.weight.original0", ".parametrizations.weight.original1"),
        ):
            if key.endswith(g_suffix):
                stem = key[: -len(g_suffix)]
                v = state[stem + v_suffix].float()
                g = value.float()
                axes = [i for i in range(v.dim()) if g.shape[i] == 1]
                out[stem + ".weight"] = v * (g / v.norm(dim=axes, keepdim=True))
                break
            if key.endswith(v_suffix):
                break
        else:
            out[key] = value
    return out


def unfold_weight_norm(state: dict[str, torch.Tensor], keys: list[str], dim: int = 0) -> dict[str, torch.Tensor]:
    """The inverse of `fold_weight_norm` for the given weight keys (used to write official layouts)."""
    out = dict(state)
    for key in keys:
        weight = out.pop(key)
        axes = [i for i in range(weight.dim()) if i != dim]
        stem = key[: -len(".weight")]
        out[stem + ".weight_g"] = weight.norm(dim=axes, keepdim=True)
        out[stem + ".weight_v"] = weight.clone()
    return out


def _float_state(state: Any, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: 'weight' is not a dict of tensors")
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


@dataclasses.dataclass
class GptCheckpoint:
    state: dict[str, torch.Tensor]  # keys without the "model." prefix
    config: dict[str, Any]  # the "model" section: n_layer, head, hidden_dim, vocab_size, EOS...
    info: str


def load_gpt_checkpoint(path: Path) -> GptCheckpoint:
    obj, _ = read_torch_file(path)
    if not isinstance(obj, dict) or "weight" not in obj or "config" not in obj:
        raise CheckpointError(f"{path}: not a GPT-SoVITS GPT checkpoint (needs 'weight' and 'config')")
    config = obj["config"]
    if isinstance(config, HParams):
        raise CheckpointError(f"{path}: this is a SoVITS file (HParams config), not a GPT checkpoint")
    model_config = config.get("model") if isinstance(config, dict) else None
    if not isinstance(model_config, dict):
        raise CheckpointError(f"{path}: config has no 'model' section")
    state = {k.removeprefix("model."): v for k, v in _float_state(obj["weight"], path).items()}
    if "ar_text_embedding.word_embeddings.weight" not in state:
        raise CheckpointError(f"{path}: no ar_text_embedding in the weights; is this a SoVITS file?")
    return GptCheckpoint(state=state, config=dict(model_config), info=str(obj.get("info", "")))


@dataclasses.dataclass
class SovitsCheckpoint:
    state: dict[str, torch.Tensor]  # weight norm folded, float32
    hps: HParams
    version: str
    info: str


def load_sovits_checkpoint(path: Path) -> SovitsCheckpoint:
    obj, tag = read_torch_file(path)
    if not isinstance(obj, dict) or "weight" not in obj or "config" not in obj:
        raise CheckpointError(f"{path}: not a SoVITS checkpoint (needs 'weight' and 'config')")
    hps = obj["config"]
    if isinstance(hps, dict):
        hps = HParams(**hps)
    if not isinstance(hps, HParams) or "model" not in hps or "data" not in hps:
        raise CheckpointError(f"{path}: config is not an HParams with 'model' and 'data'")
    state = _float_state(obj["weight"], path)
    version = (
        tag or hps.model.get("version") or ("v2" if state["enc_p.text_embedding.weight"].shape[0] == 732 else "v1")
    )
    if version not in SUPPORTED_SOVITS_VERSIONS:
        raise CheckpointError(
            f"{path}: SoVITS {version} weights; only {', '.join(SUPPORTED_SOVITS_VERSIONS)} is supported"
        )
    return SovitsCheckpoint(state=fold_weight_norm(state), hps=hps, version=version, info=str(obj.get("info", "")))


@dataclasses.dataclass
class HubertCheckpoint:
    state: dict[str, torch.Tensor]
    config: dict[str, Any]


def load_hubert_dir(directory: Path) -> HubertCheckpoint:
    config_path, weights_path = directory / "config.json", directory / "pytorch_model.bin"
    if not config_path.exists() or not weights_path.exists():
        raise CheckpointError(f"{directory}: expected config.json and pytorch_model.bin (chinese-hubert-base layout)")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{config_path}: {exc}") from exc
    obj, _ = read_torch_file(weights_path)
    state = {k.removeprefix("hubert."): v for k, v in _float_state(obj, weights_path).items()}
    return HubertCheckpoint(state=fold_weight_norm(state), config=config)
