"""Chinese BERT features for the GPT stage (chinese-roberta-wwm-ext-large), when supplied.

As the official pipeline: each Chinese character (and punctuation mark) is one token, the
features are the hidden states of the third-from-last layer without [CLS]/[SEP], and each
character's 1024-dim vector is repeated for every phone it produced. Phones not made by a
Chinese character (English words, Japanese) get zeros, as do all phones when no BERT
model was supplied. Our own encoder reads the Hugging Face `BertModel` parameter names.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from synth.engines.gptsovits.checkpoint import CheckpointError, read_torch_file
from synth.engines.gptsovits.t2s import BERT_DIM


@dataclasses.dataclass(frozen=True)
class BertConfig:
    vocab_size: int = 21128
    hidden_size: int = 1024
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    intermediate_size: int = 4096
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12

    @classmethod
    def from_json(cls, config: dict[str, Any]) -> BertConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in config.items() if k in names})


class _Embeddings(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)
        x = self.word_embeddings(ids) + self.position_embeddings(positions) + self.token_type_embeddings(ids * 0)
        return self.LayerNorm(x)


class _Dense(nn.Module):
    """`dense` + `LayerNorm` over a residual, as HF names them (attention.output, output)."""

    def __init__(self, n_in: int, n_out: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(n_in, n_out)
        self.LayerNorm = nn.LayerNorm(n_out, eps=eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class _SelfAttention(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.heads = c.num_attention_heads
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        hd = d // self.heads

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.heads, hd).transpose(1, 2)

        scores = torch.matmul(split(self.query(x)), split(self.key(x)).transpose(-1, -2)) / math.sqrt(hd)
        return torch.matmul(torch.softmax(scores, -1), split(self.value(x))).transpose(1, 2).reshape(b, t, d)


class _Attention(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.self = _SelfAttention(c)
        self.output = _Dense(c.hidden_size, c.hidden_size, c.layer_norm_eps)


class _Intermediate(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.intermediate_size)


class _Layer(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.attention = _Attention(c)
        self.intermediate = _Intermediate(c)
        self.output = _Dense(c.intermediate_size, c.hidden_size, c.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attention.output(self.attention.self(x), x)
        return self.output(F.gelu(self.intermediate.dense(x)), x)


class _Encoder(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(c) for _ in range(c.num_hidden_layers))


class Bert(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.embeddings = _Embeddings(c)
        self.encoder = _Encoder(c)

    def hidden_states(self, ids: torch.Tensor) -> list[torch.Tensor]:
        states = [self.embeddings(ids)]
        for layer in self.encoder.layer:
            states.append(layer(states[-1]))
        return states


def _read_vocab(directory: Path) -> dict[str, int]:
    """Token ids from vocab.txt (one token a line) or a fast-tokenizer tokenizer.json (WordPiece)."""
    if (directory / "vocab.txt").exists():
        lines = (directory / "vocab.txt").read_text(encoding="utf-8").splitlines()
        return {token: i for i, token in enumerate(lines)}
    vocab = json.loads((directory / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    return {str(token): int(i) for token, i in vocab.items()}


class BertFeaturizer:
    """Per-phone BERT features [1024, n_phones] from the (char, n_phones) units of the frontend."""

    def __init__(self, directory: Path) -> None:
        try:
            config = BertConfig.from_json(json.loads((directory / "config.json").read_text()))
            self.vocab = _read_vocab(directory)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise CheckpointError(
                f"{directory}: expected config.json and vocab.txt or tokenizer.json of a BERT model ({exc})"
            ) from exc
        if config.hidden_size != BERT_DIM or config.num_hidden_layers < 3:
            raise CheckpointError(f"{directory}: the GPT stage needs {BERT_DIM}-dim BERT features from >= 3 layers")
        obj, _ = read_torch_file(directory / "pytorch_model.bin")
        state = {k.removeprefix("bert."): v.float() for k, v in obj.items() if not k.startswith("cls.")}
        self.model = Bert(config)
        expected = self.model.state_dict()
        missing = [k for k in expected if k not in state]
        if missing:
            raise CheckpointError(f"{directory}: BERT weights lack {missing[:5]}")
        self.model.load_state_dict({k: state[k] for k in expected})
        self.model.eval()

    @torch.inference_mode()
    def features(self, units: list[tuple[str, int]]) -> np.ndarray:
        n_phones = sum(n for _, n in units)
        out = np.zeros((BERT_DIM, n_phones), np.float32)
        chars = [(i, u) for i, u in enumerate(units) if u[0]]
        if not chars:
            return out
        unk = self.vocab.get("[UNK]", 0)
        ids = [self.vocab["[CLS]"]] + [self.vocab.get(ch, self.vocab.get(ch.lower(), unk)) for _, (ch, _) in chars]
        ids.append(self.vocab["[SEP]"])
        hidden = self.model.hidden_states(torch.tensor([ids]))[-3][0, 1:-1].numpy()  # [n_chars, 1024]
        starts = np.cumsum([0] + [n for _, n in units])
        for row, (i, (_, n)) in enumerate(chars):
            out[:, starts[i] : starts[i] + n] = hidden[row][:, None]
        return out
