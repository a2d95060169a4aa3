"""BERT features: used for Chinese when the model is supplied, zeros otherwise."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synth.engines.base import ClauseRequest
from synth.engines.gptsovits.backend import TorchBackend
from synth.engines.gptsovits.bert import BertFeaturizer
from synth.engines.gptsovits.checkpoint import CheckpointError
from synth.engines.gptsovits.engine import GptSovitsEngine, GptSovitsOptions, create_gptsovits_engine
from synth.engines.gptsovits.frontend import phonemize_aligned
from synth.engines.gptsovits.sampling import SamplingParams
from synth.engines.gptsovits.tiny import _build_bert
from tests.conftest import SHARED_VOICES

OPTIONS = GptSovitsOptions(max_batch=2, sampling=SamplingParams(min_tokens=10, max_tokens=16))


@pytest.fixture(scope="module")
def featurizer(tmp_path_factory: pytest.TempPathFactory) -> BertFeaturizer:
    directory = tmp_path_factory.mktemp("bert")
    _build_bert(directory, seed=5)
    return BertFeaturizer(directory)


def test_features_follow_the_characters_that_made_each_phone(featurizer: BertFeaturizer) -> None:
    phones, units = phonemize_aligned("你好，GPT世界。", "zh")
    features = featurizer.features(units)
    assert features.shape == (1024, len(phones))
    assert np.array_equal(features[:, 0], features[:, 1])  # 你 -> n, i2
    assert not np.array_equal(features[:, 1], features[:, 2])
    english = slice(5, 11)  # G P T spelled out: no Chinese character, so zeros
    assert phones[english] == ["JH", "IY1", "P", "IY1", "T", "IY1"] and not features[:, english].any()
    assert np.abs(features[:, 11]).sum() > 0  # 世
    # Contextual: the same character gets different features in another sentence.
    other = featurizer.features(phonemize_aligned("你们好", "zh")[1])
    assert not np.allclose(other[:, 0], features[:, 0])


def test_engine_uses_bert_for_chinese_only(torch_backend: TorchBackend, featurizer: BertFeaturizer) -> None:
    plain = GptSovitsEngine(torch_backend, OPTIONS)
    with_bert = GptSovitsEngine(torch_backend, OPTIONS, bert=featurizer)
    audio, sr = sf.read(SHARED_VOICES / "en_367_probe.wav", dtype="float32")
    voice = plain.voice_from_recording("acct", audio, sr)  # reference-free: no prompt transcript
    zh = ClauseRequest("今天天气很好。", "zh", voice)
    en = ClauseRequest("The weather is fine.", "en", voice)
    assert with_bert.utterance(zh).decode.bert is not None and with_bert.utterance(zh).decode.bert.any()
    assert plain.utterance(zh).decode.bert is None
    assert not with_bert.utterance(en).decode.bert.any()
    a, b = plain.synthesize_batch([zh, en]), with_bert.synthesize_batch([zh, en])
    assert len(a[0]) != len(b[0]) or not np.allclose(a[0], b[0])  # Chinese changes with BERT
    assert len(a[1]) == len(b[1]) and np.allclose(a[1], b[1], atol=1e-4)  # English does not


def test_asking_for_bert_without_the_model_fails_clearly(tiny_dir: Path) -> None:
    with pytest.raises(CheckpointError, match="chinese-roberta-wwm-ext-large is missing"):
        create_gptsovits_engine(tiny_dir, runtime="torch", bert=True)


def test_the_vocabulary_may_come_from_tokenizer_json(tmp_path: Path, featurizer: BertFeaturizer) -> None:
    import json
    import shutil

    source = tmp_path / "src"
    _build_bert(source, seed=5)
    vocab = (source / "vocab.txt").read_text(encoding="utf-8").splitlines()
    (source / "tokenizer.json").write_text(
        json.dumps({"model": {"type": "WordPiece", "vocab": {t: i for i, t in enumerate(vocab)}}}), encoding="utf-8"
    )
    (source / "vocab.txt").unlink()
    from_json = BertFeaturizer(source)
    units = phonemize_aligned("今天天气很好。", "zh")[1]
    assert np.allclose(from_json.features(units), featurizer.features(units))
    shutil.rmtree(source)
