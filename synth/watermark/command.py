"""`voxroom detect FILE`: ask whether a recording carries the Voxroom watermark.

Exit status: 0 marked, 1 not marked, 2 the file is not a usable recording (like grep).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

from synth.audio_io import AudioDecodeError
from synth.watermark.files import detect_file
from synth.watermark.watermarker import Detection, Watermarker

MARKED, NOT_MARKED, UNUSABLE = 0, 1, 2


def describe(detection: Detection) -> str:
    verdict = "made by Voxroom (watermark found)" if detection.watermarked else "no Voxroom watermark found"
    text = (
        f"{verdict}: score {detection.score:.2f}, confidence {detection.confidence}, "
        f"{detection.seconds_analysed:.1f} s analysed"
    )
    if detection.confidence == "low":
        text += " (too little audio to be sure; try a longer clip)"
    return text


def detect_command(
    path: Path,
    *,
    as_json: bool = False,
    watermarker: Watermarker | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        print(f"voxroom detect: cannot read {path}: {exc.strerror or exc}", file=err)
        return UNUSABLE
    try:
        detection = detect_file(data, watermarker)
    except AudioDecodeError as exc:
        print(f"voxroom detect: {path}: {exc}", file=err)
        return UNUSABLE
    print(json.dumps(detection.as_json()) if as_json else f"{path}: {describe(detection)}", file=out)
    return MARKED if detection.watermarked else NOT_MARKED
