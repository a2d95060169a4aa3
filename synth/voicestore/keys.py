"""The deployment key that wraps every per-voice key, and the AES-GCM wrap itself."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE = "voice-key"
KEY_BYTES = 32
NONCE_BYTES = 12


class VoiceKeyError(Exception):
    """A voice record cannot be opened with this deployment key (wrong key or tampered data)."""


def parse_key(text: str) -> bytes:
    """A 256-bit key written as 64 hex digits or as (url-safe) base64."""
    text = text.strip()
    try:
        key = (
            bytes.fromhex(text)
            if len(text) == 2 * KEY_BYTES
            else base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        )
    except (ValueError, binascii.Error) as exc:
        raise ValueError("the voice key must be 32 bytes as 64 hex digits or base64") from exc
    if len(key) != KEY_BYTES:
        raise ValueError(f"the voice key must be {KEY_BYTES} bytes, got {len(key)}")
    return key


def load_or_create_deployment_key(data_dir: Path, configured: str = "") -> bytes:
    """The configured key, or the one in `<data_dir>/voice-key` (created with mode 0600 on first use)."""
    if configured:
        return parse_key(configured)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return parse_key(path.read_text())
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return parse_key(path.read_text())


def key_id(key: bytes) -> str:
    """A short, non-secret name for a key, so a mismatch is reported as such."""
    return hashlib.sha256(b"voxroom key id|" + key).hexdigest()[:16]


def new_voice_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce, AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag as exc:
        raise VoiceKeyError("the voice record cannot be decrypted with this key") from exc
