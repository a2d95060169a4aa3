"""The watermark network: an encoder that nudges low-band magnitudes, and a decoder that scores them.

Both work on scaled-dB magnitude spectrograms (see `spectrum`), batch first: [B, bins, frames].
The layer shapes follow the published checkpoint so its tensors load by name after renaming.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from synth.watermark.spectrum import MARK_BINS

HIDDEN = 256
_KERNEL = 7
_MIDDLE_LAYERS = 5
_LOUD_FRAME_FRACTION = 0.05  # frames quieter than this share of the loudest carry no mark
# The decoder reads the spectrogram at three speeds, so a clip played slightly fast or slow still scores.
_DECODER_TIME_SCALES = {"slow": 1.25, "normal": 1.0, "fast": 0.75}


class ConvStack(nn.Module):
    """1x1 in, five 7-wide layers, 1x1 out; leaky ReLU between all but the last."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        widths = [channels_in] + [HIDDEN] * (_MIDDLE_LAYERS + 1) + [channels_out]
        kernels = [1] + [_KERNEL] * _MIDDLE_LAYERS + [1]
        self.convs = nn.ModuleList(
            nn.Conv1d(w_in, w_out, k, padding=k // 2)
            for w_in, w_out, k in zip(widths, widths[1:], kernels, strict=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs[:-1]:
            x = F.leaky_relu(conv(x))
        return self.convs[-1](x)


def loud_frames(scaled_db: torch.Tensor) -> torch.Tensor:
    """[B, 1, frames] of 1.0 where a frame has enough energy to hold the mark, else 0.0."""
    loudness = scaled_db.sum(dim=1)
    threshold = loudness.max(dim=1).values * _LOUD_FRAME_FRACTION
    return (loudness > threshold[:, None]).float()[:, None]


class MarkEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stack = ConvStack(MARK_BINS, MARK_BINS)

    def forward(self, scaled_db: torch.Tensor) -> torch.Tensor:
        """The change to add to the first MARK_BINS bins, zero on quiet frames: [B, MARK_BINS, frames]."""
        return self.stack(scaled_db[:, :MARK_BINS]) * loud_frames(scaled_db)


def _mean_over(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return (values * weights).sum(dim=2) / weights.sum(dim=2).clamp(min=1.0)


class MarkDecoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stacks = nn.ModuleDict({name: ConvStack(MARK_BINS, 2) for name in _DECODER_TIME_SCALES})

    def forward(self, scaled_db: torch.Tensor) -> torch.Tensor:
        """One score per clip, [B]: near 1 for marked audio, near 0 for unmarked."""
        mask = loud_frames(scaled_db)
        band = scaled_db[:, :MARK_BINS]
        frames = band.size(2)
        attentions, marks = [], []
        for name, scale in _DECODER_TIME_SCALES.items():
            size = int(frames * scale)
            resized = band
            if size != frames:
                resized = F.interpolate(band, size=size, mode="linear", align_corners=True)
            out = self.stacks[name](resized)
            weights = F.interpolate(mask, size=out.size(2), mode="nearest")
            attentions.append(_mean_over(out[:, :1], weights))
            marks.append(_mean_over(out[:, 1:], weights))
        attention = torch.softmax(torch.cat(attentions, dim=1), dim=1)
        return (torch.cat(marks, dim=1) * attention).sum(dim=1)


def _renamed(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Split the checkpoint into encoder and decoder tensors under this module's names."""
    encoder: dict[str, torch.Tensor] = {}
    decoder: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if match := re.fullmatch(r"encoder\.layers\.(\d+)\.conv\.(weight|bias)", key):
            encoder[f"stack.convs.{match[1]}.{match[2]}"] = tensor
        elif match := re.fullmatch(r"decoder\.(slow|normal|fast)_layers\.(\d+)\.conv\.(weight|bias)", key):
            decoder[f"stacks.{match[1]}.convs.{match[2]}.{match[3]}"] = tensor
    return encoder, decoder


def build_networks(state: dict[str, torch.Tensor]) -> tuple[MarkEncoder, MarkDecoder]:
    """Encoder and decoder in eval mode with the checkpoint's weights (strict: every tensor must fit)."""
    encoder_state, decoder_state = _renamed(state)
    encoder, decoder = MarkEncoder(), MarkDecoder()
    encoder.load_state_dict(encoder_state, strict=True)
    decoder.load_state_dict(decoder_state, strict=True)
    for module in (encoder, decoder):
        module.eval()
        module.requires_grad_(False)
    return encoder, decoder
