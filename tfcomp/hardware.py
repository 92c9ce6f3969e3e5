"""What the machine's CPU can do, read from Linux's /proc/cpuinfo (empty elsewhere)."""

import os

# CPU feature flags (Linux /proc/cpuinfo) of native bfloat16 arithmetic: x86 AVX-512 BF16 and
# AMX-BF16, Arm BF16. Without them TensorFlow emulates bfloat16, and mixed precision is far slower
# than float32: a small-preset codec step measured 0.6 against 9.4 examples/s (16x) on an AMD
# EPYC with AVX2 only, where an Intel Xeon with AVX-512 BF16 ran it 1.3-3x faster than float32
# (README "Training speed").
NATIVE_BFLOAT16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
# "1" / "0": take / refuse mixed_bfloat16 on the CPU whatever the CPU has (tests of the bfloat16
# code paths force it on any machine).
BFLOAT16_ENV = "TFCOMP_CPU_BFLOAT16"


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The CPU's feature flags (x86 'flags', Arm 'Features'); empty where unknown (not Linux)."""
    try:
        with open(cpuinfo) as f:
            lines = f.read().splitlines()
    except OSError:
        return set()
    found = set()
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            found.update(value.split())
    return found


def cpu_computes_bfloat16(cpuinfo="/proc/cpuinfo"):
    """True when the CPU has one of NATIVE_BFLOAT16_FLAGS (what the machine is, whatever the
    environment asks; results record it)."""
    return bool(cpu_flags(cpuinfo) & NATIVE_BFLOAT16_FLAGS)


def cpu_has_native_bfloat16(cpuinfo="/proc/cpuinfo"):
    """True when mixed_bfloat16 pays on this CPU (`cpu_computes_bfloat16`; BFLOAT16_ENV wins)."""
    forced = os.environ.get(BFLOAT16_ENV)
    if forced in ("0", "1"):
        return forced == "1"
    return cpu_computes_bfloat16(cpuinfo)
