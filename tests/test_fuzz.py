"""A bounded fuzz run of the decoder (the long run is `python fuzz/fuzz_decode.py --seconds N`).

It runs in a subprocess: a crash in the entropy decoder (CompressAI's rANS decoder reads past
the end of a corrupt string unless the codec pads it) must fail this test, not kill pytest.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mutated_bitstreams_decode_or_raise_bitstream_error_without_crashing():
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "fuzz/fuzz_decode.py"),
            "--seconds",
            "20",
            "--models",
            "hyperprior,atn",
            "--max-decode-s",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, (r.returncode, r.stderr[-1500:])
    assert "executions=" in r.stdout
    executions = int(r.stdout.split("executions=")[1].split()[0])
    assert executions >= 10
