"""Inaudible yes/no watermark on every synthetic utterance, and a public detector for it."""

from synth.watermark.command import detect_command
from synth.watermark.files import detect_file
from synth.watermark.switch import watermark_chunk_filter
from synth.watermark.watermarker import Detection, EmbedStats, Watermarker, WatermarkInputError
from synth.watermark.weights import WatermarkWeightsError

__all__ = [
    "Detection",
    "EmbedStats",
    "WatermarkInputError",
    "WatermarkWeightsError",
    "Watermarker",
    "detect_command",
    "detect_file",
    "watermark_chunk_filter",
]
