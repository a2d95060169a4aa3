"""cnhubert: 16 kHz audio -> 768-dim content features at 50 Hz.

Our own HuBERT-base encoder reading the Hugging Face `HubertModel` parameter names
(chinese-hubert-base: 7 strided convolutions with group norm on the first, a 512->768
projection, a grouped positional convolution, 12 post-norm transformer layers). The
official pipeline feeds raw 16 kHz samples (no normalisation) and uses the last hidden state.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


@dataclasses.dataclass(frozen=True)
class HubertConfig:
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    conv_dim: tuple[int, ...] = (512,) * 7
    conv_kernel: tuple[int, ...] = (10, 3, 3, 3, 3, 2, 2)
    conv_stride: tuple[int, ...] = (5, 2, 2, 2, 2, 2, 2)
    num_conv_pos_embeddings: int = 128
    num_conv_pos_embedding_groups: int = 16
    layer_norm_eps: float = 1e-5

    @classmethod
    def from_json(cls, config: dict[str, Any]) -> HubertConfig:
        if config.get("feat_extract_norm", "group") != "group" or config.get("do_stable_layer_norm", False):
            raise ValueError("only the HuBERT-base layout (group norm, post-norm layers) is supported")
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items() if k in fields}
        return cls(**values)  # type: ignore[arg-type]  # values come from JSON; dataclass fields check


class _ConvLayer(nn.Module):
    def __init__(self, n_in: int, n_out: int, kernel: int, stride: int, group_norm: bool) -> None:
        super().__init__()
        self.conv = nn.Conv1d(n_in, n_out, kernel, stride=stride, bias=False)
        if group_norm:
            self.layer_norm = nn.GroupNorm(n_out, n_out, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if hasattr(self, "layer_norm"):
            x = self.layer_norm(x)
        return F.gelu(x)


class _FeatureExtractor(nn.Module):
    def __init__(self, c: HubertConfig) -> None:
        super().__init__()
        dims = (1, *c.conv_dim)
        self.conv_layers = nn.ModuleList(
            _ConvLayer(dims[i], dims[i + 1], c.conv_kernel[i], c.conv_stride[i], group_norm=i == 0)
            for i in range(len(c.conv_dim))
        )


class _FeatureProjection(nn.Module):
    def __init__(self, c: HubertConfig) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(c.conv_dim[-1], eps=c.layer_norm_eps)
        self.projection = nn.Linear(c.conv_dim[-1], c.hidden_size)


class _PositionalConv(nn.Module):
    def __init__(self, c: HubertConfig) -> None:
        super().__init__()
        k = c.num_conv_pos_embeddings
        self.conv = nn.Conv1d(c.hidden_size, c.hidden_size, k, padding=k // 2, groups=c.num_conv_pos_embedding_groups)
        self.trim = 1 if k % 2 == 0 else 0  # an even kernel yields one extra frame

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x.transpose(1, 2))
        if self.trim:
            y = y[:, :, : -self.trim]
        return F.gelu(y).transpose(1, 2)


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        hd = d // self.heads

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.heads, hd).transpose(1, 2)

        scores = torch.matmul(split(self.q_proj(x)) / math.sqrt(hd), split(self.k_proj(x)).transpose(-1, -2))
        out = torch.matmul(torch.softmax(scores, dim=-1), split(self.v_proj(x)))
        return self.out_proj(out.transpose(1, 2).reshape(b, t, d))


class _FeedForward(nn.Module):
    def __init__(self, dim: int, inner: int) -> None:
        super().__init__()
        self.intermediate_dense = nn.Linear(dim, inner)
        self.output_dense = nn.Linear(inner, dim)


class _Layer(nn.Module):
    def __init__(self, c: HubertConfig) -> None:
        super().__init__()
        self.attention = _Attention(c.hidden_size, c.num_attention_heads)
        self.layer_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.feed_forward = _FeedForward(c.hidden_size, c.intermediate_size)
        self.final_layer_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer_norm(x + self.attention(x))
        ff = self.feed_forward.output_dense(F.gelu(self.feed_forward.intermediate_dense(x)))
        return self.final_layer_norm(x + ff)


class _Encoder(nn.Module):
    def __init__(self, c: HubertConfig) -> None:
        super().__init__()
        self.pos_conv_embed = _PositionalConv(c)
        self.layer_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.layers = nn.ModuleList(_Layer(c) for _ in range(c.num_hidden_layers))


class Hubert(nn.Module):
    def __init__(self, c: HubertConfig) -> None:
        super().__init__()
        self.config = c
        self.feature_extractor = _FeatureExtractor(c)
        self.feature_projection = _FeatureProjection(c)
        self.encoder = _Encoder(c)
        # Used only in pre-training; present in the official weights.
        self.masked_spec_embed = nn.Parameter(torch.zeros(c.hidden_size))

    def forward(self, wav16k: torch.Tensor) -> torch.Tensor:
        """[B, samples] at 16 kHz -> features [B, 768, frames] at 50 Hz."""
        x = wav16k.unsqueeze(1)
        for layer in self.feature_extractor.conv_layers:
            x = layer(x)
        x = self.feature_projection.layer_norm(x.transpose(1, 2))
        x = self.feature_projection.projection(x)
        x = self.encoder.layer_norm(x + self.encoder.pos_conv_embed(x))
        for layer in self.encoder.layers:
            x = layer(x)
        return x.transpose(1, 2)
