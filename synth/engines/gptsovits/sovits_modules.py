"""Building blocks of the SoVITS v2 decoder, with the official parameter names.

Weight-normed convolutions of the official model are plain convolutions here: the
loader folds (weight_g, weight_v) into `weight` once, which is also what an export wants.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

LRELU_SLOPE = 0.1


def length_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """[B] lengths -> [B, 1, size] float mask."""
    return (torch.arange(size, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(1).float()


class ChannelLayerNorm(nn.Module):
    """LayerNorm over channels of a [B, C, T] tensor (official names gamma, beta)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.transpose(1, -1), (self.channels,), self.gamma, self.beta, 1e-5).transpose(1, -1)


class RelativeAttention(nn.Module):
    """Multi-head attention over [B, C, T] with optional windowed relative position terms.

    Relative offsets j - i within +-window use learned embeddings (shared by all heads);
    offsets outside the window contribute nothing.
    """

    def __init__(self, channels: int, out_channels: int, heads: int, window: int | None = None) -> None:
        super().__init__()
        self.heads = heads
        self.window = window
        self.k_channels = channels // heads
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, out_channels, 1)
        if window is not None:
            std = self.k_channels**-0.5
            self.emb_rel_k = nn.Parameter(torch.randn(1, 2 * window + 1, self.k_channels) * std)
            self.emb_rel_v = nn.Parameter(torch.randn(1, 2 * window + 1, self.k_channels) * std)

    def _relation(self, length: int, device: torch.device) -> torch.Tensor:
        """One-hot [T, T, 2w+1]: which relative embedding links query i to key j."""
        assert self.window is not None
        pos = torch.arange(length, device=device)
        offset = pos.unsqueeze(0) - pos.unsqueeze(1) + self.window  # [i, j] -> j - i + w
        ids = torch.arange(2 * self.window + 1, device=device)
        return (offset.unsqueeze(-1) == ids).float()

    def forward(self, x: torch.Tensor, c: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B,C,Tq] queries, c [B,C,Tk] keys/values, mask [B,1,Tq,Tk] (1 = may attend)."""
        b, ch, tq = x.shape
        tk = c.shape[2]
        q = self.conv_q(x).view(b, self.heads, self.k_channels, tq).transpose(2, 3) / math.sqrt(self.k_channels)
        k = self.conv_k(c).view(b, self.heads, self.k_channels, tk).transpose(2, 3)
        v = self.conv_v(c).view(b, self.heads, self.k_channels, tk).transpose(2, 3)
        scores = torch.matmul(q, k.transpose(-1, -2))
        relation = None
        if self.window is not None:
            relation = self._relation(tq, x.device)
            rel_logits = torch.matmul(q, self.emb_rel_k[0].t())  # [B,H,T,2w+1]
            scores = scores + torch.einsum("bhir,ijr->bhij", rel_logits, relation)
        scores = scores.masked_fill(mask == 0, -1e4)
        p = torch.softmax(scores, dim=-1)
        out = torch.matmul(p, v)
        if relation is not None:
            out = out + torch.matmul(torch.einsum("bhij,ijr->bhir", p, relation), self.emb_rel_v[0])
        return self.conv_o(out.transpose(2, 3).reshape(b, ch, tq))


class FeedForward(nn.Module):
    def __init__(self, channels: int, filter_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.pad = ((kernel_size - 1) // 2, kernel_size // 2)
        self.conv_1 = nn.Conv1d(channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, channels, kernel_size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv_1(F.pad(x * mask, self.pad)))
        return self.conv_2(F.pad(x * mask, self.pad)) * mask


class AttentionEncoder(nn.Module):
    """Post-norm transformer encoder over [B, C, T] with relative attention (window 4)."""

    def __init__(self, channels: int, filter_channels: int, heads: int, layers: int, kernel_size: int) -> None:
        super().__init__()
        self.attn_layers = nn.ModuleList(RelativeAttention(channels, channels, heads, window=4) for _ in range(layers))
        self.norm_layers_1 = nn.ModuleList(ChannelLayerNorm(channels) for _ in range(layers))
        self.ffn_layers = nn.ModuleList(FeedForward(channels, filter_channels, kernel_size) for _ in range(layers))
        self.norm_layers_2 = nn.ModuleList(ChannelLayerNorm(channels) for _ in range(layers))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        attn_mask = mask.unsqueeze(2) * mask.unsqueeze(-1)
        x = x * mask
        for attn, norm1, ffn, norm2 in zip(
            self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2, strict=True
        ):
            x = norm1(x + attn(x, x, attn_mask))
            x = norm2(x + ffn(x, mask))
        return x * mask


class MRTE(nn.Module):
    """Multi-reference timbre encoder: content frames attend to the text, plus the timbre vector."""

    def __init__(self, content_channels: int, hidden: int, heads: int = 4) -> None:
        super().__init__()
        self.cross_attention = RelativeAttention(hidden, hidden, heads)
        self.c_pre = nn.Conv1d(content_channels, hidden, 1)
        self.text_pre = nn.Conv1d(content_channels, hidden, 1)
        self.c_post = nn.Conv1d(hidden, content_channels, 1)

    def forward(
        self,
        ssl: torch.Tensor,
        ssl_mask: torch.Tensor,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        ge: torch.Tensor,
    ) -> torch.Tensor:
        attn_mask = text_mask.unsqueeze(2) * ssl_mask.unsqueeze(-1)
        ssl_enc = self.c_pre(ssl * ssl_mask)
        text_enc = self.text_pre(text * text_mask)
        x = self.cross_attention(ssl_enc * ssl_mask, text_enc * text_mask, attn_mask) + ssl_enc + ge
        return self.c_post(x * ssl_mask)


class WaveNet(nn.Module):
    """Gated dilated convolutions conditioned on the timbre vector (official `WN`)."""

    def __init__(self, hidden: int, kernel_size: int, dilation_rate: int, layers: int, gin_channels: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.cond_layer = nn.Conv1d(gin_channels, 2 * hidden * layers, 1)
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        for i in range(layers):
            dilation = dilation_rate**i
            self.in_layers.append(
                nn.Conv1d(
                    hidden,
                    2 * hidden,
                    kernel_size,
                    dilation=dilation,
                    padding=(kernel_size * dilation - dilation) // 2,
                )
            )
            self.res_skip_layers.append(nn.Conv1d(hidden, 2 * hidden if i < layers - 1 else hidden, 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        output = torch.zeros_like(x)
        g = self.cond_layer(g)
        last = len(self.in_layers) - 1
        for i, (in_layer, res_skip) in enumerate(zip(self.in_layers, self.res_skip_layers, strict=True)):
            acts = in_layer(x) + g[:, i * 2 * self.hidden : (i + 1) * 2 * self.hidden]
            acts = torch.tanh(acts[:, : self.hidden]) * torch.sigmoid(acts[:, self.hidden :])
            rs = res_skip(acts)
            if i < last:
                x = (x + rs[:, : self.hidden]) * mask
                output = output + rs[:, self.hidden :]
            else:
                output = output + rs
        return output * mask


class CouplingLayer(nn.Module):
    """Mean-only affine coupling (official `ResidualCouplingLayer`, mean_only=True)."""

    def __init__(self, channels: int, hidden: int, kernel_size: int, layers: int, gin_channels: int) -> None:
        super().__init__()
        self.half_channels = channels // 2
        self.pre = nn.Conv1d(self.half_channels, hidden, 1)
        self.enc = WaveNet(hidden, kernel_size, 1, layers, gin_channels)
        self.post = nn.Conv1d(hidden, self.half_channels, 1)

    def reverse(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        x0, x1 = x[:, : self.half_channels], x[:, self.half_channels :]
        m = self.post(self.enc(self.pre(x0) * mask, mask, g)) * mask
        return torch.cat([x0, (x1 - m) * mask], dim=1)


class _Flip(nn.Module):
    """Parameter-free channel reversal between couplings (keeps the official module indices)."""


class Flow(nn.Module):
    def __init__(self, channels: int, hidden: int, gin_channels: int, n_flows: int = 4) -> None:
        super().__init__()
        self.flows = nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(CouplingLayer(channels, hidden, 5, 4, gin_channels))
            self.flows.append(_Flip())

    def reverse(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        for flow in reversed(self.flows):
            x = flow.reverse(x, mask, g) if isinstance(flow, CouplingLayer) else torch.flip(x, [1])
        return x


class ResBlock(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilations: list[int]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=(kernel_size * d - d) // 2)
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2) for _ in dilations
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE) * mask), LRELU_SLOPE) * mask)
        return x * mask


class Generator(nn.Module):
    """HiFi-GAN generator conditioned on the timbre vector."""

    def __init__(
        self,
        in_channels: int,
        resblock_kernel_sizes: list[int],
        resblock_dilation_sizes: list[list[int]],
        upsample_rates: list[int],
        upsample_initial_channel: int,
        upsample_kernel_sizes: list[int],
        gin_channels: int,
    ) -> None:
        super().__init__()
        self.num_kernels = len(resblock_kernel_sizes)
        self.upsample_rates = list(upsample_rates)
        self.conv_pre = nn.Conv1d(in_channels, upsample_initial_channel, 7, 1, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        ch = upsample_initial_channel
        for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes, strict=True)):
            ch = upsample_initial_channel // (2 ** (i + 1))
            self.ups.append(nn.ConvTranspose1d(2 * ch, ch, k, u, padding=(k - u) // 2))
            for rk, rd in zip(resblock_kernel_sizes, resblock_dilation_sizes, strict=True):
                self.resblocks.append(ResBlock(ch, rk, rd))
        self.conv_post = nn.Conv1d(ch, 1, 7, 1, padding=3, bias=False)
        self.cond = nn.Conv1d(gin_channels, upsample_initial_channel, 1)

    def forward(self, x: torch.Tensor, g: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x [B, C, frames], lengths [B] in frames.

        Activations past a row's length are zeroed before every convolution, so a row padded
        inside a batch renders exactly as it would alone (zero padding at its end).
        """
        x = (self.conv_pre(x) + self.cond(g)) * length_mask(lengths, x.shape[2])
        scale = 1
        for i, (up, rate) in enumerate(zip(self.ups, self.upsample_rates, strict=True)):
            scale *= rate
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            mask = length_mask(lengths * scale, x.shape[2])
            x = x * mask
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            x = sum(block(x, mask) for block in blocks) / self.num_kernels
        return torch.tanh(self.conv_post(F.leaky_relu(x)))


class _Linear(nn.Module):
    """Official `LinearNorm`: a Linear kept under the name `fc`."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.fc = nn.Linear(n_in, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class _ConvNorm(nn.Module):
    """Official `ConvNorm`: a Conv1d kept under the name `conv`."""

    def __init__(self, conv: nn.Conv1d) -> None:
        super().__init__()
        self.conv = conv


class _GatedConv(nn.Module):
    """Official `Conv1dGLU` (conv kept under `conv1.conv`) with its residual."""

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv1 = _ConvNorm(nn.Conv1d(channels, 2 * channels, kernel_size, padding=(kernel_size - 1) // 2))
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1.conv(x)
        return x + y[:, : self.channels] * torch.sigmoid(y[:, self.channels :])


class _StyleAttention(nn.Module):
    def __init__(self, heads: int, dim: int) -> None:
        super().__init__()
        self.heads = heads
        self.w_qs = nn.Linear(dim, dim)
        self.w_ks = nn.Linear(dim, dim)
        self.w_vs = nn.Linear(dim, dim)
        self.fc = nn.Linear(dim, dim)
        self.temperature = math.sqrt(dim)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        hd = d // self.heads

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.heads, hd).transpose(1, 2)

        scores = torch.matmul(split(self.w_qs(x)), split(self.w_ks(x)).transpose(-1, -2)) / self.temperature
        scores = scores.masked_fill(pad.view(b, 1, 1, t), float("-inf"))
        out = torch.matmul(torch.softmax(scores, dim=-1), split(self.w_vs(x)))
        return self.fc(out.transpose(1, 2).reshape(b, t, d)) + x


class _Mish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.tanh(F.softplus(x))


class MelStyleEncoder(nn.Module):
    """Reference spectrogram [B, 704, T] -> timbre vector [B, gin, 1] (official `MelStyleEncoder`)."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 128, kernel_size: int = 5, heads: int = 2) -> None:
        super().__init__()
        self.spectral = nn.Sequential(
            _Linear(in_dim, hidden), _Mish(), nn.Identity(), _Linear(hidden, hidden), _Mish(), nn.Identity()
        )
        self.temporal = nn.Sequential(_GatedConv(hidden, kernel_size), _GatedConv(hidden, kernel_size))
        self.slf_attn = _StyleAttention(heads, hidden)
        self.fc = _Linear(hidden, out_dim)

    def forward(self, spec: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pad = mask[:, 0] == 0  # [B, T]
        x = self.spectral(spec.transpose(1, 2))
        x = self.temporal(x.transpose(1, 2)).transpose(1, 2)
        x = x.masked_fill(pad.unsqueeze(-1), 0)
        x = self.fc(self.slf_attn(x, pad))
        x = x.masked_fill(pad.unsqueeze(-1), 0)
        return (x.sum(dim=1) / (~pad).sum(dim=1, keepdim=True)).unsqueeze(-1)
