import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from synth.engines.gptsovits.checkpoint import (
    CheckpointError,
    load_gpt_checkpoint,
    load_sovits_checkpoint,
    read_torch_file,
)
from synth.engines.gptsovits.hparams import HParams, pickled_as_official_name
from synth.engines.gptsovits.loader import GPT_FILE, HUBERT_DIR, SOVITS_FILE, ModelFiles, load_torch_models


def test_gpt_checkpoint_has_the_official_layout(tiny_dir: Path) -> None:
    raw, tag = read_torch_file(tiny_dir / GPT_FILE)
    assert tag is None and set(raw) == {"weight", "config", "info"}
    assert all(k.startswith("model.") for k in raw["weight"])
    assert raw["weight"]["model.ar_text_embedding.word_embeddings.weight"].dtype == torch.float16
    gpt = load_gpt_checkpoint(tiny_dir / GPT_FILE)
    assert gpt.state["ar_text_embedding.word_embeddings.weight"].shape == (732, 64)
    assert gpt.state["ar_audio_embedding.word_embeddings.weight"].shape == (1025, 64)
    assert gpt.config["EOS"] == 1024 and gpt.state["ar_predict_layer.weight"].dtype == torch.float32


def test_sovits_checkpoint_config_is_an_hparams_and_weight_norm_is_folded(tiny_dir: Path) -> None:
    raw, _ = read_torch_file(tiny_dir / SOVITS_FILE)
    assert isinstance(raw["config"], HParams)
    assert "dec.ups.0.weight_g" in raw["weight"] and not any(k.startswith("enc_q") for k in raw["weight"])
    with zipfile.ZipFile(tiny_dir / SOVITS_FILE) as z:  # the pickle names the official class
        data = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    assert b"utils" in data and b"HParams" in data
    sv = load_sovits_checkpoint(tiny_dir / SOVITS_FILE)
    assert sv.version == "v2" and sv.hps.data.sampling_rate == 32000
    assert "dec.ups.0.weight" in sv.state and "dec.ups.0.weight_g" not in sv.state
    g, v = raw["weight"]["dec.ups.0.weight_g"].float(), raw["weight"]["dec.ups.0.weight_v"].float()
    expected = v * g / v.norm(dim=(1, 2), keepdim=True)
    assert torch.allclose(sv.state["dec.ups.0.weight"], expected, atol=1e-6)


class _Exploit:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.target}",))


def test_a_malicious_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save({"weight": {}, "config": _Exploit(marker), "info": ""}, evil)
    with pytest.raises(CheckpointError, match=r"refused: it names posix.system"):
        load_sovits_checkpoint(evil)
    assert not marker.exists()
    # The same exploit hidden in a plain pickle (not a torch zip) is not even opened as one.
    plain = tmp_path / "plain.ckpt"
    plain.write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(CheckpointError):
        load_gpt_checkpoint(plain)
    assert not marker.exists()


def test_version_tags_replace_the_zip_header(tiny_dir: Path, tmp_path: Path) -> None:
    data = (tiny_dir / SOVITS_FILE).read_bytes()
    tagged_v2 = tmp_path / "v2.pth"
    tagged_v2.write_bytes(b"01" + data[2:])
    assert load_sovits_checkpoint(tagged_v2).version == "v2"
    pro = tmp_path / "pro.pth"
    pro.write_bytes(b"05" + data[2:])
    with pytest.raises(CheckpointError, match="v2Pro"):
        load_sovits_checkpoint(pro)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"ZZ" + data[2:])
    with pytest.raises(CheckpointError, match="header"):
        load_sovits_checkpoint(junk)


def test_swapped_or_incomplete_files_give_clear_errors(tiny_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="SoVITS file"):
        load_gpt_checkpoint(tiny_dir / SOVITS_FILE)
    broken = tmp_path / "models"
    (broken / GPT_FILE).parent.mkdir(parents=True)
    (broken / GPT_FILE).write_bytes((tiny_dir / GPT_FILE).read_bytes())
    raw, _ = read_torch_file(tiny_dir / SOVITS_FILE)
    del raw["weight"]["enc_p.proj.weight"]
    with pickled_as_official_name():
        torch.save(raw, broken / SOVITS_FILE)
    (broken / HUBERT_DIR).mkdir()
    for name in ("config.json", "pytorch_model.bin"):
        (broken / HUBERT_DIR / name).write_bytes((tiny_dir / HUBERT_DIR / name).read_bytes())
    with pytest.raises(CheckpointError, match="enc_p.proj.weight"):
        load_torch_models(ModelFiles.find(broken))
    with pytest.raises(CheckpointError, match="does not exist"):
        ModelFiles.find(tmp_path / "nowhere")


def test_the_tiny_builder_command_writes_the_official_layout(tmp_path: Path) -> None:
    from synth.engines.gptsovits.tiny import main

    main(["--out", str(tmp_path), "--seed", "3"])
    files = ModelFiles.find(tmp_path)
    assert files.gpt == tmp_path / GPT_FILE and files.sovits == tmp_path / SOVITS_FILE and files.bert_dir is None
    assert (tmp_path / HUBERT_DIR / "preprocessor_config.json").exists()
