"""Download the official GPT-SoVITS v2 pretrained files and check their hashes.

    python -m synth.engines.gptsovits.pull --dir DIR      (wired as `voxroom models pull gpt-sovits-v2`)

Files come from the official Hugging Face repository into the layout `loader.ModelFiles`
reads. Checks: the SHA-256 of every file against the hash the hub publishes for it
(`X-Linked-Etag` of LFS files), and, for the SoVITS weights, the fingerprint the official
project pins (MD5 of the first 8 KiB). The verified hashes are written to DIR/SHA256SUMS
so `verify(DIR)` can re-check later. The BERT model is fetched only with include_bert.
Nothing here runs at serve time: the engine never downloads.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from synth.engines.gptsovits.loader import BERT_DIR, GPT_FILE, HUBERT_DIR, SOVITS_FILE

OFFICIAL_BASE = "https://huggingface.co/lj1995/GPT-SoVITS/resolve/main/"
CORE_FILES = (
    GPT_FILE,
    SOVITS_FILE,
    f"{HUBERT_DIR}/config.json",
    f"{HUBERT_DIR}/preprocessor_config.json",
    f"{HUBERT_DIR}/pytorch_model.bin",
)
BERT_FILES = (f"{BERT_DIR}/config.json", f"{BERT_DIR}/pytorch_model.bin", f"{BERT_DIR}/tokenizer.json")
# The official project identifies its pretrained SoVITS v2 file by the MD5 of its first 8 KiB.
HEAD_MD5 = {SOVITS_FILE: "6642b37f3dbb1f76882b69937c95a5f3"}
SUMS_FILE = "SHA256SUMS"


class PullError(RuntimeError):
    """The download could not be made or did not verify."""


def pull(dest: Path, base_url: str = OFFICIAL_BASE, include_bert: bool = False, timeout_s: float = 30.0) -> list[Path]:
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    names = CORE_FILES + (BERT_FILES if include_bert else ())
    sums: dict[str, str] = _read_sums(dest)
    done = []
    for name in names:
        target = dest / name
        if target.exists() and sums.get(name) == _sha256(target):
            done.append(target)
            continue
        sums[name] = _download(base_url + urllib.parse.quote(name), target, timeout_s)
        expected_head = HEAD_MD5.get(name)
        if expected_head and _head_md5(target) != expected_head:
            target.unlink()
            raise PullError(f"{name} is not the official pretrained file (fingerprint mismatch); removed it")
        done.append(target)
    (dest / SUMS_FILE).write_text("".join(f"{h}  {n}\n" for n, h in sorted(sums.items())))
    return done


def verify(dest: Path) -> None:
    """Re-check every file listed in DIR/SHA256SUMS; PullError on the first mismatch."""
    sums = _read_sums(Path(dest))
    if not sums:
        raise PullError(f"{dest}/{SUMS_FILE} is missing; pull the models first")
    for name, expected in sums.items():
        path = Path(dest) / name
        if not path.exists() or _sha256(path) != expected:
            raise PullError(f"{path} is missing or changed since it was verified")


def _download(url: str, target: Path, timeout_s: float) -> str:
    part = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(part, "wb") as out:
            published = (response.headers.get("X-Linked-Etag") or response.headers.get("ETag") or "").strip('"')
            while block := response.read(1 << 20):
                digest.update(block)
                out.write(block)
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise PullError(
            f"cannot download {url}: {reason}. This machine may have no internet access; "
            f"copy the official files by hand into {target.parent.parent} (layout: {', '.join(CORE_FILES)})"
        ) from exc
    actual = digest.hexdigest()
    if len(published) == 64 and published != actual:
        part.unlink()
        raise PullError(f"{url}: SHA-256 {actual} does not match the published {published}")
    os.replace(part, target)
    return actual


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _head_md5(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.md5(f.read(8192)).hexdigest()


def _read_sums(dest: Path) -> dict[str, str]:
    path = dest / SUMS_FILE
    if not path.exists():
        return {}
    pairs = (line.split("  ", 1) for line in path.read_text().splitlines() if line.strip())
    return {name: digest for digest, name in pairs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Download the official GPT-SoVITS v2 pretrained files")
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--with-bert", action="store_true", help="also fetch chinese-roberta-wwm-ext-large")
    parser.add_argument("--base-url", default=OFFICIAL_BASE)
    args = parser.parse_args(argv)
    try:
        for path in pull(args.dir, args.base_url, include_bert=args.with_bert):
            print(f"ok {path}")
    except PullError as exc:
        parser.exit(1, f"error: {exc}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
