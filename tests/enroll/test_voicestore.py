"""Encrypted voice records: round trip, no plaintext, wrong key fails closed, atomic replace, erase."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from synth.voicestore import VoiceKeyError, VoiceRecord, VoiceStore, load_or_create_deployment_key
from synth.voicestore.keys import parse_key
from tests.enroll.conftest import files_under, leaked_runs


def make_record(owner: str = "alice", version: int = 1, seed: int = 0) -> VoiceRecord:
    rng = np.random.default_rng(seed)
    voiceprint = rng.standard_normal(256).astype(np.float32)
    return VoiceRecord(
        owner=owner,
        version=version,
        meta={"status": "ready", "quality": {"verdict": "ok"}, "created_at": "2026-01-01T00:00:00+00:00"},
        arrays={
            "voiceprint": voiceprint / np.linalg.norm(voiceprint),
            "pack": rng.standard_normal((510, 1, 256)).astype(np.float32),
        },
    )


def plaintext_needles(record: VoiceRecord) -> list[bytes]:
    """Byte runs that would show any stored array in the clear (float32 and float64 forms)."""
    needles = []
    for array in record.arrays.values():
        flat = array.reshape(-1)
        for start in (0, flat.size // 2, flat.size - 8):
            needles.append(flat[start : start + 8].astype(np.float32).tobytes())
            needles.append(flat[start : start + 8].astype(np.float64).tobytes())
    return needles


@pytest.fixture
def key(tmp_path: Path) -> bytes:
    return load_or_create_deployment_key(tmp_path)


def test_round_trip(tmp_path: Path, key: bytes) -> None:
    store = VoiceStore(tmp_path / "voices", key)
    record = make_record()
    store.save(record)
    loaded = store.load("alice")
    assert loaded is not None and loaded.owner == "alice" and loaded.version == 1
    assert loaded.meta == record.meta
    for name, array in record.arrays.items():
        np.testing.assert_array_equal(loaded.arrays[name], array)
        assert loaded.arrays[name].dtype == array.dtype
    assert store.load("bob") is None


def test_stored_bytes_hold_no_plaintext(tmp_path: Path, key: bytes) -> None:
    store = VoiceStore(tmp_path / "voices", key)
    record = make_record()
    store.save(record)
    assert leaked_runs(tmp_path, plaintext_needles(record)) == []
    blob = store.path_for("alice").read_bytes()
    assert b"alice" not in blob and b"ready" not in blob and b"created_at" not in blob
    assert "alice" not in store.path_for("alice").name


def test_wrong_deployment_key_fails_closed(tmp_path: Path, key: bytes) -> None:
    VoiceStore(tmp_path / "voices", key).save(make_record())
    other = VoiceStore(tmp_path / "voices", bytes(32))
    with pytest.raises(VoiceKeyError):
        other.load("alice")


def test_tampered_record_fails_closed(tmp_path: Path, key: bytes) -> None:
    store = VoiceStore(tmp_path / "voices", key)
    store.save(make_record())
    path = store.path_for("alice")
    blob = bytearray(path.read_bytes())
    blob[-100] ^= 0x01
    path.write_bytes(bytes(blob))
    with pytest.raises(VoiceKeyError):
        store.load("alice")


def test_a_record_moved_to_another_owner_does_not_open(tmp_path: Path, key: bytes) -> None:
    store = VoiceStore(tmp_path / "voices", key)
    store.save(make_record("alice"))
    os.replace(store.path_for("alice"), store.path_for("mallory"))
    with pytest.raises(VoiceKeyError):
        store.load("mallory")


def test_resave_replaces_atomically_under_a_new_voice_key(tmp_path: Path, key: bytes) -> None:
    store = VoiceStore(tmp_path / "voices", key)
    store.save(make_record(version=1, seed=0))
    first = store.path_for("alice").read_bytes()
    newer = make_record(version=2, seed=1)
    store.save(newer)
    loaded = store.load("alice")
    assert loaded is not None and loaded.version == 2
    np.testing.assert_array_equal(loaded.arrays["pack"], newer.arrays["pack"])
    second = store.path_for("alice").read_bytes()
    header_len = int.from_bytes(first[4:8], "big")
    assert first[8 : 8 + header_len] != second[8 : 8 + header_len]  # a fresh wrapped key
    assert [p.name for p in files_under(tmp_path / "voices")] == [store.path_for("alice").name]


def test_delete_erases_the_record(tmp_path: Path, key: bytes) -> None:
    store = VoiceStore(tmp_path / "voices", key)
    record = make_record()
    store.save(record)
    assert store.delete("alice") is True
    assert store.load("alice") is None and not store.exists("alice")
    assert files_under(tmp_path / "voices") == []
    assert store.delete("alice") is False


def test_records_lists_every_voice(tmp_path: Path, key: bytes) -> None:
    store = VoiceStore(tmp_path / "voices", key)
    for owner in ("a", "b", "c"):
        store.save(make_record(owner))
    assert sorted(r.owner for r in store.records()) == ["a", "b", "c"]


def test_key_file_is_private_and_stable(tmp_path: Path) -> None:
    first = load_or_create_deployment_key(tmp_path)
    mode = stat.S_IMODE((tmp_path / "voice-key").stat().st_mode)
    assert mode == 0o600
    assert load_or_create_deployment_key(tmp_path) == first
    assert len(first) == 32


def test_configured_key_wins_and_is_checked(tmp_path: Path) -> None:
    configured = "00" * 32
    assert load_or_create_deployment_key(tmp_path, configured) == bytes(32)
    assert not (tmp_path / "voice-key").exists()
    with pytest.raises(ValueError):
        parse_key("too-short")
