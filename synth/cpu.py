"""What this machine's CPU is and which vector instructions it has, from /proc/cpuinfo.

The int8 engine's speed depends on them (VNNI makes its int8 dot products several times faster
than AVX2 alone), so the engine chooses its kernels by them and the benchmarks record them.
"""

from __future__ import annotations

from pathlib import Path

VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


def cpuinfo_field(field: str, cpuinfo: str | None = None) -> str:
    """The first value of `field` in /proc/cpuinfo (or in `cpuinfo`); "" where there is none."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
    return next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith(field)), "")


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    return frozenset(cpuinfo_field("flags", cpuinfo).split())


def cpu_has_vnni(cpuinfo: str | None = None) -> bool:
    """Whether the CPU has int8 dot-product instructions (AVX512-VNNI, AVX-VNNI or AMX)."""
    return bool(cpu_flags(cpuinfo) & VNNI_FLAGS)


def cpu_has_avx2(cpuinfo: str | None = None) -> bool:
    return "avx2" in cpu_flags(cpuinfo)
