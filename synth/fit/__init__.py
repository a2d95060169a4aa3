"""Fitting the embedded engine's style vector to an enrolled voice.

`fit_style(target, start_pack, progress=..., cpu_budget_s=...)` is the function the
enrollment job runs (see synth.enroll.contract); `nearest_stock_pack(target)` picks
the start pack.
"""

from synth.fit.stock import nearest_stock_pack
from synth.fit.style_fit import fit_style

__all__ = ["fit_style", "nearest_stock_pack"]
