"""Process-wide memory tuning for the decoders' large feature maps (no PyTorch import, so
``wz`` can apply it before any model loads)."""

from __future__ import annotations

# glibc hands every allocation over its mmap threshold (32 MB at most, by default) straight
# back to the kernel when it is freed, so each of a decoder's large feature maps (a 1024x2048
# image makes many of 130-540 MB) is page-faulted and zero-filled afresh, layer after layer.
# Measured on a 2-core Xeon
# (`python -m wzcodec.eval.bench --worker codec atn 1024x2048 2 3 "" "" 0`,
# without and with, alternating, two runs each): atn decode at 1024x2048 3.58 / 3.58 s ->
# 2.07 / 2.37 s, at 375x1242 0.61 / 0.58 -> 0.54 / 0.50 s; peak RSS at 1024x2048 2.2-2.3 ->
# 3.3-3.5 GB. An eager atn training step (`--worker train`): 2.4 -> 2.0 s.
MALLOC_LIMIT = 1 << 30
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def reuse_freed_memory(limit: int = MALLOC_LIMIT) -> bool:
    """Let glibc's malloc keep freed blocks of up to ``limit`` bytes for reuse instead of
    returning them to the kernel (``mallopt`` of M_MMAP_THRESHOLD and M_TRIM_THRESHOLD).

    Process-wide, so the library never does it on import: ``wz`` (every subcommand), ``wz
    bench`` and ``wz eval``'s workers call it; from Python, call it once yourself. Costs peak
    memory (freed blocks stay mapped) for speed. Does nothing and returns False where the C
    library is not glibc, or where the user set ``MALLOC_MMAP_THRESHOLD_`` /
    ``MALLOC_TRIM_THRESHOLD_`` or glibc malloc tunables (theirs win)."""
    import ctypes
    import os
    import platform

    if platform.libc_ver()[0] != "glibc":
        return False
    if any(k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return False
    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    ok = libc.mallopt(_M_MMAP_THRESHOLD, limit) == 1
    return libc.mallopt(_M_TRIM_THRESHOLD, limit) == 1 and ok
