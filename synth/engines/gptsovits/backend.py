"""The five sub-graphs every runtime provides, with numpy in and out.

`TorchBackend` runs our PyTorch models and is the reference; `runtime.OrtBackend` runs
the ONNX exports of the same graphs. Everything above this layer (batching, streaming,
the engine) talks only to this interface.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

import numpy as np
import torch

from synth.engines.gptsovits.loader import TorchModels


@dataclasses.dataclass(frozen=True)
class Dims:
    n_layer: int
    heads: int
    head_dim: int
    vocab: int
    eos: int
    inter_channels: int
    gin_channels: int
    sample_rate: int
    samples_per_token: int
    n_fft: int
    hop: int
    win: int

    @classmethod
    def of(cls, models: TorchModels) -> Dims:
        t, s = models.t2s.config, models.sovits.config
        return cls(
            n_layer=t.n_layer,
            heads=t.head,
            head_dim=t.hidden_dim // t.head,
            vocab=t.vocab_size,
            eos=t.eos,
            inter_channels=s.inter_channels,
            gin_channels=s.gin_channels,
            sample_rate=s.sampling_rate,
            samples_per_token=s.samples_per_token,
            n_fft=s.filter_length,
            hop=s.hop_length,
            win=s.win_length,
        )


class Backend(Protocol):
    dims: Dims
    name: str

    def prefill(
        self,
        phones: np.ndarray,
        phone_lens: np.ndarray,
        bert: np.ndarray,
        prompt: np.ndarray,
        prompt_lens: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """-> logits [B,V], keys [B,L,H,hd,S], values [B,L,H,S,hd], key_valid [B,S] bool."""
        ...

    def step(
        self, tokens: np.ndarray, positions: np.ndarray, mask_bias: np.ndarray, caches: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """-> logits [B,V], new keys [B,L,H,hd], new values [B,L,H,hd]."""
        ...

    def vocode(
        self,
        codes: np.ndarray,
        code_lens: np.ndarray,
        phones: np.ndarray,
        phone_lens: np.ndarray,
        ge: np.ndarray,
        noise: np.ndarray,
    ) -> np.ndarray:
        """-> audio [B, samples] (float32, 32 kHz)."""
        ...

    def content_codes(self, wav16k: np.ndarray) -> np.ndarray:
        """[1, samples] 16 kHz -> semantic tokens [1, N]."""
        ...

    def timbre(self, spec: np.ndarray) -> np.ndarray:
        """Reference linear spectrogram [1, bins, T] -> timbre vector [1, gin, 1]."""
        ...


class ContentModel(torch.nn.Module):
    """cnhubert + ssl_proj + codebook lookup, one graph: 16 kHz audio -> prompt tokens."""

    def __init__(self, models: TorchModels) -> None:
        super().__init__()
        self.hubert = models.hubert
        self.sovits = models.sovits

    def forward(self, wav16k: torch.Tensor) -> torch.Tensor:
        return self.sovits.extract_codes(self.hubert(wav16k))


class TorchBackend:
    name = "torch"

    def __init__(self, models: TorchModels) -> None:
        self.models = models
        self.dims = Dims.of(models)
        self.content = ContentModel(models)

    @torch.inference_mode()
    def prefill(self, phones, phone_lens, bert, prompt, prompt_lens):  # type: ignore[no-untyped-def]
        out = self.models.t2s.prefill(
            torch.from_numpy(phones), torch.from_numpy(phone_lens), torch.from_numpy(bert),
            torch.from_numpy(prompt), torch.from_numpy(prompt_lens),
        )  # fmt: skip
        return tuple(t.numpy() for t in out)

    @torch.inference_mode()
    def step(self, tokens, positions, mask_bias, caches):  # type: ignore[no-untyped-def]
        out = self.models.t2s.step(
            torch.from_numpy(tokens), torch.from_numpy(positions), torch.from_numpy(mask_bias),
            [torch.from_numpy(c) for c in caches],
        )  # fmt: skip
        return tuple(t.numpy() for t in out)

    @torch.inference_mode()
    def vocode(self, codes, code_lens, phones, phone_lens, ge, noise):  # type: ignore[no-untyped-def]
        audio = self.models.sovits.decode(
            *(torch.from_numpy(a) for a in (codes, code_lens, phones, phone_lens, ge, noise))
        )
        return audio[:, 0].numpy()

    @torch.inference_mode()
    def content_codes(self, wav16k):  # type: ignore[no-untyped-def]
        return self.content(torch.from_numpy(wav16k)).numpy()

    @torch.inference_mode()
    def timbre(self, spec):  # type: ignore[no-untyped-def]
        lens = torch.tensor([spec.shape[2]], dtype=torch.int64)
        return self.models.sovits.timbre(torch.from_numpy(spec), lens).numpy()
