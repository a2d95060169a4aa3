"""Encrypted voice records on local disk, one file per owner.

Each file holds the voice's own AES-256-GCM key, wrapped (AES-GCM) by the deployment
key, and the record encrypted under that voice key. Writes go to a temporary file that
replaces the old one atomically, so a re-enrollment is seen whole or not at all.
Deleting overwrites the file (wrapped key included) with random bytes before unlinking:
the voice key is gone, so any copy of the ciphertext left behind is unreadable.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import os
import secrets
import struct
from pathlib import Path
from typing import Any

import numpy as np

from synth.voicestore import keys

MAGIC = b"VXV1"
SUFFIX = ".voice"


@dataclasses.dataclass(frozen=True, eq=False)
class VoiceRecord:
    """What is kept of a voice: arrays (style pack, features, judge print) and plain metadata."""

    owner: str
    version: int
    meta: dict[str, Any]  # JSON-able: status, quality, similarity, created_at, ...
    arrays: dict[str, np.ndarray]


class VoiceStore:
    def __init__(self, directory: Path, deployment_key: bytes) -> None:
        if len(deployment_key) != keys.KEY_BYTES:
            raise ValueError("the deployment key must be 32 bytes")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._key = deployment_key
        self._key_id = keys.key_id(deployment_key)

    def path_for(self, owner: str) -> Path:
        # File names never reveal or depend on the account id's characters.
        return self.directory / (_owner_tag(owner) + SUFFIX)

    def exists(self, owner: str) -> bool:
        return self.path_for(owner).exists()

    def save(self, record: VoiceRecord) -> None:
        """Write the record under a fresh voice key, replacing any previous one atomically."""
        tag = _owner_tag(record.owner).encode()
        voice_key = keys.new_voice_key()
        wrap_nonce, wrapped = keys.seal(self._key, voice_key, b"voice-key|" + tag)
        nonce, ciphertext = keys.seal(voice_key, _serialise(record), b"voice-record|" + tag)
        header = json.dumps(
            {
                "key_id": self._key_id,
                "wrap_nonce": _b64(wrap_nonce),
                "wrapped_key": _b64(wrapped),
                "nonce": _b64(nonce),
            }
        ).encode()
        blob = MAGIC + struct.pack(">I", len(header)) + header + ciphertext
        _atomic_write(self.path_for(record.owner), blob)

    def load(self, owner: str) -> VoiceRecord | None:
        """The owner's record, None if there is none; VoiceKeyError if it cannot be opened (fail closed)."""
        record = self._open(self.path_for(owner))
        if record is not None and record.owner != owner:
            raise keys.VoiceKeyError("the voice record does not belong to this account")
        return record

    def records(self) -> list[VoiceRecord]:
        """Every record that opens with this key (used at start-up to resume unfinished fits)."""
        out = []
        for path in sorted(self.directory.glob("*" + SUFFIX)):
            record = self._open(path)
            if record is not None:
                out.append(record)
        return out

    def _open(self, path: Path) -> VoiceRecord | None:
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        if blob[:4] != MAGIC or len(blob) < 8:
            raise keys.VoiceKeyError(f"{path.name} is not a voice record")
        (length,) = struct.unpack(">I", blob[4:8])
        header = json.loads(blob[8 : 8 + length])
        if header.get("key_id") != self._key_id:
            raise keys.VoiceKeyError("this voice was stored under a different deployment key")
        tag = path.name.removesuffix(SUFFIX).encode()
        voice_key = keys.open_sealed(
            self._key, _unb64(header["wrap_nonce"]), _unb64(header["wrapped_key"]), b"voice-key|" + tag
        )
        plaintext = keys.open_sealed(voice_key, _unb64(header["nonce"]), blob[8 + length :], b"voice-record|" + tag)
        return _deserialise(plaintext)

    def delete(self, owner: str) -> bool:
        """Crypto-erase: overwrite the wrapped key and the ciphertext, then remove the file."""
        path = self.path_for(owner)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return False
        with open(path, "r+b") as handle:
            handle.write(secrets.token_bytes(size))
            handle.flush()
            os.fsync(handle.fileno())
        path.unlink()
        _fsync_dir(self.directory)
        return True


def _owner_tag(owner: str) -> str:
    return hashlib.sha256(b"voxroom voice owner|" + owner.encode()).hexdigest()[:40]


def _serialise(record: VoiceRecord) -> bytes:
    meta = json.dumps({"owner": record.owner, "version": record.version, "meta": record.meta}).encode()
    arrays = io.BytesIO()
    np.savez(arrays, **record.arrays)  # type: ignore[arg-type]  # the stub checks **arrays against allow_pickle
    return struct.pack(">I", len(meta)) + meta + arrays.getvalue()


def _deserialise(plaintext: bytes) -> VoiceRecord:
    (length,) = struct.unpack(">I", plaintext[:4])
    head = json.loads(plaintext[4 : 4 + length])
    with np.load(io.BytesIO(plaintext[4 + length :]), allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    return VoiceRecord(owner=head["owner"], version=int(head["version"]), meta=head["meta"], arrays=arrays)


def _atomic_write(path: Path, blob: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(blob)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)
