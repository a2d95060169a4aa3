"""The contract between enrollment and the voice fit.

The raw recording is used once, for features, and then discarded: the fit receives a
`FitTarget` (features only, never audio) and a starting style pack, and returns a
`FittedStyle`: a style pack and the engine's per-layer timbre. `synth.fit.fit_style` is
the real fit; until it is installed, the nearest stock pack is returned as it is, so the
whole flow still works end to end.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol

import numpy as np

LANGUAGE_HINTS = ("zh", "en", "ja", "unknown")
PACK_SHAPE = (510, 1, 256)
# CPU seconds a voice fit may take unless the deployment says otherwise (VOXROOM_FIT_CPU_S): the goal is under
# five CPU-minutes a voice, and a fit at this budget takes 200 on average, at most about 220, guard and colour
# included (docs/voice-fit.md).
FIT_CPU_BUDGET_S = 240.0


@dataclasses.dataclass(frozen=True, eq=False)
class FitTarget:
    """Everything the fit may use, computed once from the cleaned recording."""

    voiceprint: np.ndarray  # Resemblyzer (GE2E) 256-d embedding, unit norm (synth.enroll.voiceprint)
    segment_voiceprints: np.ndarray  # [k, 256] per-segment embeddings (for robust targets)
    logmel_mean: np.ndarray  # [80] (synth.enroll.features.log_mel_24k over speech frames)
    logmel_std: np.ndarray  # [80]
    f0_median_hz: float  # voiced F0 statistics
    f0_p10_hz: float
    f0_p90_hz: float
    language_hint: str  # "zh" | "en" | "ja" | "unknown"
    # [80] the recording's noise floor: mel magnitude, low percentile per band of its quiet frames (None unless
    # asked for: features.extract(with_noise_floor=True), for FitSettings.spectrum_in_room only)
    noise_mel: np.ndarray | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        """Flat name -> array form, for encrypted storage and for passing to the fit process."""
        return {
            "voiceprint": self.voiceprint,
            "segment_voiceprints": self.segment_voiceprints,
            "logmel_mean": self.logmel_mean,
            "logmel_std": self.logmel_std,
            "f0": np.array([self.f0_median_hz, self.f0_p10_hz, self.f0_p90_hz], dtype=np.float64),
        } | ({} if self.noise_mel is None else {"noise_mel": self.noise_mel})

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], language_hint: str) -> FitTarget:
        f0 = arrays["f0"]
        return cls(
            voiceprint=np.asarray(arrays["voiceprint"], dtype=np.float32),
            segment_voiceprints=np.asarray(arrays["segment_voiceprints"], dtype=np.float32),
            logmel_mean=np.asarray(arrays["logmel_mean"], dtype=np.float32),
            logmel_std=np.asarray(arrays["logmel_std"], dtype=np.float32),
            f0_median_hz=float(f0[0]),
            f0_p10_hz=float(f0[1]),
            f0_p90_hz=float(f0[2]),
            language_hint=language_hint,
            noise_mel=np.asarray(arrays["noise_mel"], dtype=np.float32) if "noise_mel" in arrays else None,
        )


FitProgress = Callable[[float, str], None]


@dataclasses.dataclass(frozen=True, eq=False)
class FittedStyle:
    """What a voice fit gives the engine."""

    pack: np.ndarray  # style pack PACK_SHAPE
    layers: np.ndarray | None = None  # per-layer timbre [58, 128] (synth.engines.kokoro_layers); None: zeros
    denoise: float = 0.0  # share of the noise suppressor's output in the voice's (synth.output_denoise)

    def share_of_the_way(self, start_pack: np.ndarray, share: float, layer_share: float | None = None) -> FittedStyle:
        """`share` (0..1) of the way from the start pack to this fit's style, and `layer_share` (default: the same)
        of the way from no layers to its per-layer timbre."""
        layer_share = share if layer_share is None else layer_share
        pack = (start_pack + share * (self.pack - start_pack)).astype(np.float32)
        layers = None if self.layers is None or layer_share == 0.0 else (layer_share * self.layers).astype(np.float32)
        # None of the way is the start pack, served as it is.
        return FittedStyle(pack, layers, self.denoise if share != 0.0 or layers is not None else 0.0)


class FitFunction(Protocol):
    def __call__(
        self, target: FitTarget, start_pack: np.ndarray, *, progress: FitProgress, cpu_budget_s: float,
        per_layer_timbre: bool = True,
    ) -> FittedStyle: ...


def keep_start_pack(
    target: FitTarget, start_pack: np.ndarray, *, progress: FitProgress, cpu_budget_s: float,
    per_layer_timbre: bool = True,
) -> FittedStyle:
    """The stand-in fit: the nearest stock pack, unchanged."""
    progress(1.0, "using the nearest built-in voice")
    return FittedStyle(np.asarray(start_pack, dtype=np.float32).copy())


def load_fit_function() -> tuple[FitFunction, str]:
    """`synth.fit.fit_style` when it is installed, else the stand-in; with a name for status reports."""
    try:
        from synth.fit import fit_style  # type: ignore[attr-defined]
    except ImportError:
        return keep_start_pack, "nearest-stock"
    return fit_style, "gradient-fit"


def check_pack(pack: np.ndarray) -> np.ndarray:
    """A style pack as the engine needs it, or ValueError."""
    array = np.asarray(pack, dtype=np.float32)
    if array.shape == (510, 256):
        array = array.reshape(PACK_SHAPE)
    if array.shape != PACK_SHAPE or not np.all(np.isfinite(array)):
        raise ValueError(f"a style pack must be finite float32 {PACK_SHAPE}, got {array.shape}")
    return array
