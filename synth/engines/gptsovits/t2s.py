"""The autoregressive text-to-semantic transformer (GPT stage), in PyTorch.

Parameter names match the official checkpoints (after the "model." prefix is dropped),
so official weights load unchanged. Decoding is split into two graphs so both can be
exported to ONNX with a real batch axis:

- `prefill`: text phones (+ BERT features) and the voice's prompt tokens in, the KV cache
  and the logits for the first new token out.
- `step`: one new token per row in, logits and that token's keys/values out. The host
  owns the cache and the sampling, so every row may use its own sampling parameters.

Cache layout, one pair per layer so the runtime reads it in place: keys [B, H, hd, T]
(already transposed for q @ K) and values [B, H, T, hd], with a mask saying which slots
hold a real position. Positions are carried by the sinusoidal embeddings
added to the inputs, not by slot order, so a row's slots may contain padding holes.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, cast

import torch
from torch import nn
from torch.nn import functional as F

BERT_DIM = 1024


@dataclasses.dataclass(frozen=True)
class T2SConfig:
    vocab_size: int = 1025  # 1024 semantic codes + EOS
    phoneme_vocab_size: int = 732
    embedding_dim: int = 512
    hidden_dim: int = 512
    head: int = 16
    n_layer: int = 24
    linear_units: int = 2048
    eos: int = 1024

    @classmethod
    def from_checkpoint(cls, model: dict[str, Any]) -> T2SConfig:
        return cls(
            vocab_size=int(model["vocab_size"]),
            phoneme_vocab_size=int(model["phoneme_vocab_size"]),
            embedding_dim=int(model["embedding_dim"]),
            hidden_dim=int(model["hidden_dim"]),
            head=int(model["head"]),
            n_layer=int(model["n_layer"]),
            linear_units=int(model.get("linear_units", 4 * int(model["hidden_dim"]))),
            eos=int(model["EOS"]),
        )

    def to_checkpoint(self) -> dict[str, Any]:
        return {
            "vocab_size": self.vocab_size,
            "phoneme_vocab_size": self.phoneme_vocab_size,
            "embedding_dim": self.embedding_dim,
            "hidden_dim": self.hidden_dim,
            "head": self.head,
            "n_layer": self.n_layer,
            "linear_units": self.linear_units,
            "EOS": self.eos,
            "dropout": 0,
        }


class TokenEmbedding(nn.Module):
    def __init__(self, dim: int, vocab: int) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.word_embeddings(ids)


class SinePosition(nn.Module):
    """Adds alpha * sinusoid(position); positions are given explicitly per element."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.alpha = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        channel = torch.arange(self.dim, device=x.device)
        div = torch.exp((channel - channel % 2).to(torch.float32) * (-math.log(10000.0) / self.dim))
        angle = positions.to(torch.float32).unsqueeze(-1) * div
        # sin on even channels, cos on odd ones (no reshape, so an empty prompt stays valid)
        pe = torch.where(channel % 2 == 0, torch.sin(angle), torch.cos(angle))
        return x + self.alpha * pe


class SelfAttention(nn.Module):
    """Names match torch.nn.MultiheadAttention (in_proj_weight/bias, out_proj)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        return q, k, v

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """q [B,Q,D], k/v [B,S,D], allowed [B,Q,S] bool -> [B,Q,D]."""
        b, nq, d = q.shape
        hd = d // self.heads
        qh = q.view(b, nq, self.heads, hd).transpose(1, 2)
        kh = k.view(b, -1, self.heads, hd).transpose(1, 2)
        vh = v.view(b, -1, self.heads, hd).transpose(1, 2)
        scores = torch.matmul(qh, kh.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
        scores = scores.masked_fill(~allowed.unsqueeze(1), -1e9)
        out = torch.matmul(torch.softmax(scores, dim=-1), vh)
        return self.out_proj(out.transpose(1, 2).reshape(b, nq, d))


class DecoderLayer(nn.Module):
    """Post-norm transformer layer, names as torch.nn.TransformerEncoderLayer."""

    def __init__(self, dim: int, heads: int, units: int) -> None:
        super().__init__()
        self.self_attn = SelfAttention(dim, heads)
        self.linear1 = nn.Linear(dim, units)
        self.linear2 = nn.Linear(units, dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)

    def forward(
        self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, q: torch.Tensor, allowed: torch.Tensor
    ) -> torch.Tensor:
        x = self.norm1(x + self.self_attn.attend(q, k, v, allowed))
        return self.norm2(x + self.linear2(F.relu(self.linear1(x))))


class Layers(nn.Module):
    def __init__(self, config: T2SConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DecoderLayer(config.hidden_dim, config.head, config.linear_units) for _ in range(config.n_layer)
        )


class Text2Semantic(nn.Module):
    def __init__(self, config: T2SConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.embedding_dim
        self.bert_proj = nn.Linear(BERT_DIM, dim)
        self.ar_text_embedding = TokenEmbedding(dim, config.phoneme_vocab_size)
        self.ar_text_position = SinePosition(dim)
        self.ar_audio_embedding = TokenEmbedding(dim, config.vocab_size)
        self.ar_audio_position = SinePosition(dim)
        self.h = Layers(config)
        self.ar_predict_layer = nn.Linear(config.hidden_dim, config.vocab_size, bias=False)

    def decoder_layers(self) -> list[DecoderLayer]:
        return [cast(DecoderLayer, layer) for layer in self.h.layers]

    def prefill(
        self,
        phones: torch.Tensor,  # [B, Tx] int64, padded
        phone_lens: torch.Tensor,  # [B] int64
        bert: torch.Tensor,  # [B, 1024, Tx] float (zeros when there are no BERT features)
        prompt: torch.Tensor,  # [B, Ty] int64 semantic tokens, padded (Ty may be 0)
        prompt_lens: torch.Tensor,  # [B] int64
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> logits [B, V], keys [B, L, H, hd, S] (transposed), values [B, L, H, S, hd], key_valid [B, S].

        S = Tx + Ty slots: the padded text, then the padded prompt; key_valid marks the real ones.
        """
        tx, ty = phones.shape[1], prompt.shape[1]
        x_pos = torch.arange(tx, device=phones.device).unsqueeze(0).expand(phones.shape[0], tx)
        y_pos = torch.arange(ty, device=phones.device).unsqueeze(0).expand(prompt.shape[0], ty)
        x = self.ar_text_embedding(phones) + self.bert_proj(bert.transpose(1, 2))
        x = self.ar_text_position(x, x_pos)
        y = self.ar_audio_position(self.ar_audio_embedding(prompt), y_pos)
        h = torch.cat([x, y], dim=1)

        x_valid = x_pos < phone_lens.unsqueeze(1)
        y_valid = y_pos < prompt_lens.unsqueeze(1)
        key_valid = torch.cat([x_valid, y_valid], dim=1)  # [B, S]
        is_y = torch.cat([torch.zeros_like(x_valid), torch.ones_like(y_valid)], dim=1)
        order = torch.cat([x_pos * 0 - 1, y_pos], dim=1)  # text keys sort before every prompt token
        # Text attends to text only; prompt tokens attend to all text and to earlier prompt tokens.
        allowed = key_valid.unsqueeze(1) & (
            (~is_y.unsqueeze(1)) & (~is_y.unsqueeze(2))
            | (is_y.unsqueeze(2) & (order.unsqueeze(1) <= order.unsqueeze(2)))
        )
        b, s, heads = h.shape[0], h.shape[1], self.config.head
        keys, values = [], []
        for layer in self.decoder_layers():
            q, k, v = layer.self_attn.project(h)
            keys.append(k.view(b, s, heads, -1).permute(0, 2, 3, 1))
            values.append(v.view(b, s, heads, -1).transpose(1, 2))
            h = layer(h, k, v, q, allowed)
        # The next token is predicted from the last real position: the last prompt token, or the last phone.
        last = torch.where(prompt_lens > 0, tx + prompt_lens - 1, phone_lens - 1)
        h_last = torch.gather(h, 1, last.view(-1, 1, 1).expand(-1, 1, h.shape[-1])).squeeze(1)
        return self.ar_predict_layer(h_last), torch.stack(keys, dim=1), torch.stack(values, dim=1), key_valid

    def step(
        self,
        tokens: torch.Tensor,  # [B] int64, the token sampled last
        positions: torch.Tensor,  # [B] int64, its index among the row's semantic tokens
        mask_bias: torch.Tensor,  # [B, T] float: 0 for a real cache slot, -1e9 for an empty one
        caches: list[torch.Tensor],  # per layer: keys [B, H, hd, T] (transposed), values [B, H, T, hd]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns logits [B, V] and the new token's keys and values, each [B, L, H, hd]."""
        h = self.ar_audio_position(self.ar_audio_embedding(tokens.unsqueeze(1)), positions.unsqueeze(1))
        b, heads = h.shape[0], self.config.head
        bias = mask_bias.unsqueeze(1).unsqueeze(1)  # [B, 1, 1, T]
        new_k, new_v = [], []
        for i, layer in enumerate(self.decoder_layers()):
            attn = layer.self_attn
            q, k, v = (t.view(b, heads, -1) for t in attn.project(h))  # [B, H, hd]
            new_k.append(k)
            new_v.append(v)
            scale = 1.0 / math.sqrt(q.shape[-1])
            scores_cache = torch.matmul(q.unsqueeze(2), caches[2 * i]) * scale + bias  # [B, H, 1, T]
            score_new = (q * k).sum(-1, keepdim=True).unsqueeze(-1) * scale  # [B, H, 1, 1]
            p = torch.softmax(torch.cat([scores_cache, score_new], dim=-1), dim=-1)
            out = torch.matmul(p[..., :-1], caches[2 * i + 1]) + p[..., -1:] * v.unsqueeze(2)  # [B, H, 1, hd]
            h = layer.norm1(h + attn.out_proj(out.reshape(b, 1, -1)))
            h = layer.norm2(h + layer.linear2(F.relu(layer.linear1(h))))
        return self.ar_predict_layer(h[:, 0]), torch.stack(new_k, dim=1), torch.stack(new_v, dim=1)
