"""GPT-SoVITS v2 backend: official weights, PyTorch reference, ONNX Runtime inference.

Heavy modules (torch, onnxruntime) are imported only when an engine is created.
"""

from __future__ import annotations
