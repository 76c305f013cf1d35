"""Coding runs with a fixed number of threads, whatever the caller's setting.

oneDNN's convolutions sum in a thread-count-dependent order: with 1 and 2 threads the same
decoder output differs by ~5e-7, which flips some pixels' rounding, and the hyperprior's scales
(which pick the entropy tables) could differ between encoder and decoder machines set to other
thread counts. Coding therefore always runs with ``CODING_THREADS`` threads (2: twice as fast
as 1 on a 2-core machine). PyTorch is imported only when a coder runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

CODING_THREADS = 2


@contextlib.contextmanager
def fixed_threads(n: int | None = None) -> Iterator[None]:
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n or CODING_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX-512 BF16 or AMX); elsewhere bf16 is
    emulated and slower than fp32."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
