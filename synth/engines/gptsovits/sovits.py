"""The SoVITS v2 decoder: semantic tokens + phones + reference spectrogram -> 32 kHz audio.

Frame arithmetic (checked against the official config s2.json): semantic tokens come at
25 Hz; the decoder repeats each token twice to 50 Hz frames; the HiFi-GAN upsamples each
frame by 10*8*2*2*2 = 640 samples at 32 kHz. So one semantic token is 1280 samples (40 ms)
and one 50 Hz frame is 640 samples. The reference spectrogram uses the same hop (640),
n_fft 2048 (1025 bins), of which v2's style encoder reads the first 704.
"""

from __future__ import annotations

import dataclasses
from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

from synth.engines.gptsovits.hparams import HParams
from synth.engines.gptsovits.sovits_modules import (
    MRTE,
    AttentionEncoder,
    Flow,
    Generator,
    MelStyleEncoder,
    length_mask,
)

SSL_DIM = 768
STYLE_BINS = 704  # v2 reads the first 704 of the 1025 linear-spectrogram bins


@dataclasses.dataclass(frozen=True)
class SovitsConfig:
    inter_channels: int = 192
    hidden_channels: int = 192
    filter_channels: int = 768
    n_heads: int = 2
    n_layers: int = 6
    kernel_size: int = 3
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    upsample_rates: tuple[int, ...] = (10, 8, 2, 2, 2)
    upsample_initial_channel: int = 512
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 8, 2, 2)
    gin_channels: int = 512
    n_symbols: int = 732
    sampling_rate: int = 32000
    filter_length: int = 2048
    hop_length: int = 640
    win_length: int = 2048

    @classmethod
    def from_hparams(cls, hps: HParams, n_symbols: int) -> SovitsConfig:
        m, d = hps.model, hps.data
        return cls(
            inter_channels=int(m.inter_channels),
            hidden_channels=int(m.hidden_channels),
            filter_channels=int(m.filter_channels),
            n_heads=int(m.n_heads),
            n_layers=int(m.n_layers),
            kernel_size=int(m.kernel_size),
            resblock_kernel_sizes=tuple(int(k) for k in m.resblock_kernel_sizes),
            resblock_dilation_sizes=tuple(tuple(int(x) for x in d_) for d_ in m.resblock_dilation_sizes),
            upsample_rates=tuple(int(u) for u in m.upsample_rates),
            upsample_initial_channel=int(m.upsample_initial_channel),
            upsample_kernel_sizes=tuple(int(k) for k in m.upsample_kernel_sizes),
            gin_channels=int(m.gin_channels),
            n_symbols=n_symbols,
            sampling_rate=int(d.sampling_rate),
            filter_length=int(d.filter_length),
            hop_length=int(d.hop_length),
            win_length=int(d.win_length),
        )

    @property
    def samples_per_frame(self) -> int:
        prod = 1
        for u in self.upsample_rates:
            prod *= u
        return prod

    @property
    def samples_per_token(self) -> int:
        return 2 * self.samples_per_frame


class TextEncoder(nn.Module):
    """Official `enc_p`: content (quantized SSL) + phones + timbre -> prior mean/log-std."""

    def __init__(self, c: SovitsConfig) -> None:
        super().__init__()
        h = c.hidden_channels
        self.out_channels = c.inter_channels
        self.ssl_proj = nn.Conv1d(SSL_DIM, h, 1)
        self.encoder_ssl = AttentionEncoder(h, c.filter_channels, c.n_heads, c.n_layers // 2, c.kernel_size)
        self.encoder_text = AttentionEncoder(h, c.filter_channels, c.n_heads, c.n_layers, c.kernel_size)
        self.text_embedding = nn.Embedding(c.n_symbols, h)
        self.mrte = MRTE(h, c.gin_channels)
        self.encoder2 = AttentionEncoder(h, c.filter_channels, c.n_heads, c.n_layers // 2, c.kernel_size)
        self.proj = nn.Conv1d(h, c.inter_channels * 2, 1)

    def forward(
        self,
        quantized: torch.Tensor,
        y_mask: torch.Tensor,
        phones: torch.Tensor,
        text_mask: torch.Tensor,
        ge: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.ssl_proj(quantized * y_mask) * y_mask
        y = self.encoder_ssl(y * y_mask, y_mask)
        text = self.encoder_text(self.text_embedding(phones).transpose(1, 2) * text_mask, text_mask)
        y = self.mrte(y, y_mask, text, text_mask, ge)
        y = self.encoder2(y * y_mask, y_mask)
        stats = self.proj(y) * y_mask
        return stats[:, : self.out_channels], stats[:, self.out_channels :]


class Codebook(nn.Module):
    def __init__(self, bins: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("embed", torch.randn(bins, dim))
        self.register_buffer("inited", torch.ones(1))
        self.register_buffer("cluster_size", torch.zeros(bins))
        self.register_buffer("embed_avg", torch.zeros(bins, dim))


class _VQLayer(nn.Module):
    def __init__(self, bins: int, dim: int) -> None:
        super().__init__()
        self._codebook = Codebook(bins, dim)


class Quantizer(nn.Module):
    """One-level residual VQ with a 1024-entry codebook (names as `quantizer.vq.layers.0._codebook.*`)."""

    def __init__(self, bins: int = 1024, dim: int = SSL_DIM) -> None:
        super().__init__()
        self.vq = nn.Module()
        self.vq.layers = nn.ModuleList([_VQLayer(bins, dim)])

    @property
    def embed(self) -> torch.Tensor:
        layer = cast(_VQLayer, cast(nn.ModuleList, self.vq.layers)[0])
        return cast(torch.Tensor, layer._codebook.embed)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """[B, D, T] -> codes [B, T] by nearest codebook entry (Euclidean)."""
        flat = x.transpose(1, 2)
        dist = (flat**2).sum(-1, keepdim=True) - 2 * flat @ self.embed.t() + (self.embed**2).sum(-1)
        return dist.argmin(dim=-1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, T] -> [B, D, T]."""
        return F.embedding(codes, self.embed).transpose(1, 2)


class SynthesizerV2(nn.Module):
    """Official `SynthesizerTrn` for inference (enc_q, used only in training, is absent)."""

    def __init__(self, c: SovitsConfig) -> None:
        super().__init__()
        self.config = c
        self.enc_p = TextEncoder(c)
        self.dec = Generator(
            c.inter_channels,
            list(c.resblock_kernel_sizes),
            [list(d) for d in c.resblock_dilation_sizes],
            list(c.upsample_rates),
            c.upsample_initial_channel,
            list(c.upsample_kernel_sizes),
            c.gin_channels,
        )
        self.flow = Flow(c.inter_channels, c.hidden_channels, c.gin_channels)
        self.ref_enc = MelStyleEncoder(STYLE_BINS, c.gin_channels)
        self.ssl_proj = nn.Conv1d(SSL_DIM, SSL_DIM, 2, stride=2)
        self.quantizer = Quantizer()

    def extract_codes(self, ssl: torch.Tensor) -> torch.Tensor:
        """cnhubert features [B, 768, T50] -> semantic tokens [B, T50 // 2]."""
        return self.quantizer.encode(self.ssl_proj(ssl))

    def timbre(self, spec: torch.Tensor, spec_lens: torch.Tensor) -> torch.Tensor:
        """Reference linear spectrogram [B, 1025, T] -> timbre vector ge [B, gin, 1]."""
        mask = length_mask(spec_lens, spec.shape[2])
        return self.ref_enc(spec[:, :STYLE_BINS] * mask, mask)

    def decode(
        self,
        codes: torch.Tensor,  # [B, N] semantic tokens
        code_lens: torch.Tensor,  # [B]
        phones: torch.Tensor,  # [B, P]
        phone_lens: torch.Tensor,  # [B]
        ge: torch.Tensor,  # [B, gin, 1]
        noise: torch.Tensor,  # [B, inter, 2N] standard normal, already scaled by noise_scale
    ) -> torch.Tensor:
        """Returns audio [B, 1, 2N * 640]; samples past a row's length are silence-ish padding."""
        quantized = self.quantizer.decode(codes)
        quantized = torch.repeat_interleave(quantized, 2, dim=2)  # 25 Hz -> 50 Hz (nearest)
        y_mask = length_mask(code_lens * 2, quantized.shape[2])
        text_mask = length_mask(phone_lens, phones.shape[1])
        m_p, logs_p = self.enc_p(quantized, y_mask, phones, text_mask, ge)
        z_p = m_p + noise * torch.exp(logs_p)
        z = self.flow.reverse(z_p, y_mask, ge)
        return self.dec(z * y_mask, ge, code_lens * 2)
