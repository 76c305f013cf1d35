"""``wz bench``: every row measured in its own worker, ratios to the hyperprior, the JSON."""

from __future__ import annotations

import json

from wzcodec.bench import run


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
    # JPEG is tuned to the file size nearest the hyperprior's
    assert abs(by["jpeg", "codec"]["bytes"] - hp["bytes"]) < hp["bytes"]
    train = by["hyperprior", "train"]
    assert train["batch"] == "8x256x256" and train["steps_per_hour"] == 3600 / train["step_s"]
    assert "steps/h" in capsys.readouterr().out
