"""``wz bench``: every row measured in its own worker, ratios to the hyperprior, the JSON."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from wzcodec.eval.bench import run


def test_bench_times_codecs_and_training_and_writes_ratios_to_the_hyperprior(tmp_path, capsys):
    out = tmp_path / "speed.json"
    run(["hyperprior"], sizes=[(64, 128)], repeats=1, out=out)
    rows = json.loads(out.read_text())["rows"]
    by = {(r["model"], r["kind"]): r for r in rows}
    assert set(by) == {
        ("hyperprior", "codec"), ("jpeg", "codec"), ("avif", "codec"), ("hyperprior", "train"),
    }  # fmt: skip
    assert not [r for r in rows if "error" in r]
    hp = by["hyperprior", "codec"]
    assert hp["encode_s"] > 0 and hp["decode_s"] > 0 and hp["decode_vs_hyperprior"] == 1.0
    assert hp["peak_rss_mb"] > 100 and hp["weights"] == "shipped"
    assert hp["reuse_freed_memory"] == (platform.libc_ver()[0] == "glibc")  # as `wz` runs
    # JPEG is tuned to the file size nearest the hyperprior's
    assert abs(by["jpeg", "codec"]["bytes"] - hp["bytes"]) < hp["bytes"]
    train = by["hyperprior", "train"]
    assert train["batch"] == "8x256x256" and train["steps_per_hour"] == 3600 / train["step_s"]
    assert "steps/h" in capsys.readouterr().out


_FAULTS = """
import resource, sys, torch
import wzcodec
tuned = wzcodec.reuse_freed_memory() if sys.argv[1] == "1" else None
torch.empty(64 << 20, dtype=torch.uint8).fill_(1)  # a feature map: allocated, written, freed
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for mb in (60, 56, 52):  # the next layers' maps fit where it was
    torch.empty(mb << 20, dtype=torch.uint8).fill_(1)
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(tuned: bool, env: dict | None = None) -> tuple[str, int]:
    r = subprocess.run(
        [sys.executable, "-c", _FAULTS, "1" if tuned else "0"],
        capture_output=True, text=True, check=True, env={**os.environ, **(env or {})},
    )  # fmt: skip
    flag, faults = r.stdout.split()
    return flag, int(faults)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_reuse_freed_memory_serves_a_freed_feature_map_again_without_page_faults():
    # 168 MB is 43,008 pages of 4 KB: glibc unmaps each map on free and faults every page of
    # the next one in afresh, unless told to keep them
    _, plain = _page_faults(False)
    flag, tuned = _page_faults(True)
    assert flag == "True" and plain > 40_000 and tuned < 1_000
    # the user's own malloc settings win
    flag, _ = _page_faults(True, {"MALLOC_MMAP_THRESHOLD_": str(1 << 20)})
    assert flag == "False"
