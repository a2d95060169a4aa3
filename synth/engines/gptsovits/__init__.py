"""GPT-SoVITS v2 backend: official weights, a PyTorch reference graph, ONNX Runtime inference.

Module map, lowest layer first:
- hparams, checkpoint, loader: read the official .ckpt/.pth/cnhubert files safely; build models
- t2s (GPT stage), sovits_modules + sovits (decoder), hubert (content features), bert (optional)
- frontend: text -> v2 phone symbols (zh, en, ja); voice: reference recording -> prompt + timbre
- backend (PyTorch), onnx_export + runtime (ONNX Runtime): the same five sub-graphs, numpy in/out
- sampling, batching (continuous AR batching), vocoder (whole and chunked rendering),
  streaming (continuous batching with chunked output)
- engine: the Engine adapter and `create_gptsovits_engine`; pull: official downloads; tiny: test models

Heavy modules (torch, onnxruntime) are imported only when an engine is created.
"""

from __future__ import annotations
