"""Encrypted per-voice records: AES-GCM under a per-voice key wrapped by the deployment key."""

from synth.voicestore.keys import VoiceKeyError, load_or_create_deployment_key
from synth.voicestore.store import VoiceRecord, VoiceStore

__all__ = ["VoiceKeyError", "VoiceRecord", "VoiceStore", "load_or_create_deployment_key"]
