"""``wz bench`` / ``benchmarks/speed.py``: encode/decode time and peak memory per model and size,
JPEG and AVIF at a comparable size, and training throughput; ratios to ``hyperprior``.

Every measurement runs in a fresh worker process (``python -m wzcodec.eval.bench --worker ...``), so
peak RSS (``ru_maxrss``) belongs to that model and size alone. Times are the median of
``repeats`` runs after one warm-up, with ``threads`` intra-op threads. Images are real: the
Middlebury motorcycle pair shipped with scikit-image, resized (bilinear) to each size, unless a
pair is given.
"""

from __future__ import annotations

import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from wzcodec.catalog import CATALOG

SIZES = [(128, 256), (375, 1242), (1024, 2048)]


def _pair(size: tuple[int, int], left: str | None, right: str | None):
    from PIL import Image

    if left and right:
        from wzcodec.images import read_rgb

        x, y = read_rgb(left), read_rgb(right)
    else:
        from skimage import data

        x, y, _ = data.stereo_motorcycle()
    h, w = size
    return tuple(
        np.asarray(Image.fromarray(np.asarray(a)).resize((w, h), Image.BILINEAR)) for a in (x, y)
    )


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def worker(
    kind: str,
    name: str,
    size: tuple[int, int],
    threads: int,
    repeats: int,
    left: str | None,
    right: str | None,
    target_bytes: int | None,
) -> dict:
    import torch

    from wzcodec.memory import reuse_freed_memory

    torch.set_num_threads(threads)
    tuned = reuse_freed_memory()  # as `wz` does
    x, y = _pair(size, left, right)
    res: dict = {"model": name, "size": f"{size[0]}x{size[1]}", "kind": kind}
    res["reuse_freed_memory"] = tuned
    if kind == "codec":  # every method through Codec; a target: the largest file within it
        from wzcodec.bitstream import parse

        codec = _codec(name)
        bpp = 8 * target_bytes / (x.shape[0] * x.shape[1]) if target_bytes else None
        data = codec.encode(x, bpp=bpp, or_smallest=True)
        q = parse(data).header.quality
        res.update(
            encode_s=_median_time(lambda: codec.encode(x, quality=q), repeats),
            decode_s=_median_time(lambda: codec.decode(data, side=y), repeats),
            bytes=codec.stored_size(data),
            quality=q,
            weights=codec.weights_source,
        )
    else:
        res.update(_train_step(kind, name, repeats))
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return res


def _train_step(kind: str, name: str, repeats: int) -> dict:
    """Training throughput at batch 8 of 256x256 crops, bf16 + channels_last."""
    import torch

    from wzcodec.models import build
    from wzcodec.models.compiled import compile_transforms
    from wzcodec.models.loss import RateDistortionLoss

    model = build(name).to(memory_format=torch.channels_last).train()
    model.bf16 = True
    if kind == "train-compiled":  # as `wz train` with `compile: true`
        compile_transforms(model)
    hw = (128, 256) if name == "atn-paper" else (256, 256)
    batch = 1 if name == "atn-paper" else 8
    xb = torch.rand(batch, 3, *hw).contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], 1e-4)
    crit = RateDistortionLoss(alpha=1.0)

    def step():
        out = model(xb, xb.flip(-1), torch.randint(1, 7, (batch,)).float())
        loss = crit(out, xb, xb.flip(-1), torch.full((batch,), 0.01))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # one more warm-up: a compiled model compiles its backward on the first step
    s = _median_time(step, repeats)
    return {
        "step_s": s,
        "steps_per_hour": 3600 / s,
        "batch": f"{batch}x{hw[0]}x{hw[1]}",
        "compiled": kind == "train-compiled",
    }


def _codec(name: str):
    """Shipped weights when they exist, else a randomly initialised model (timing only)."""
    import torch

    import wzcodec
    from wzcodec import catalog
    from wzcodec.codec import Codec
    from wzcodec.models import build

    if catalog.entry(name).kind == "classical":
        codec = wzcodec.load(name)
        codec.weights_source = "none"
    elif name in wzcodec.available():
        codec = wzcodec.load(name)
        codec.weights_source = "shipped"
    else:
        torch.manual_seed(0)
        codec = Codec.from_model(build(name))
        codec.weights_source = "random-init"
    return codec


def _run_worker(args: list[str]) -> dict:
    r = subprocess.run(
        [sys.executable, "-m", "wzcodec.eval.bench", "--worker", *args],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def run(
    models: list[str],
    sizes=SIZES,
    threads: int = 2,
    repeats: int = 3,
    train: bool = True,
    left: str | None = None,
    right: str | None = None,
    out: Path | None = None,
    compile_train: bool = False,
) -> dict:
    """Measure everything, print the tables and write the JSON. ``compile_train`` adds a
    training row per model with its transforms compiled (``wz train`` with ``compile: true``)."""
    rows = []
    base = [str(threads), str(repeats), left or "", right or ""]
    for h, w in sizes:
        target = None
        for name in models:
            if name == "atn-paper" and (h, w) != (128, 256):
                continue
            r = _run_worker(["codec", name, f"{h}x{w}", *base, "0"])
            rows.append({"model": name, "size": f"{h}x{w}", "kind": "codec", **r})
            if name == "hyperprior":
                target = r.get("bytes")
        for name in ("jpeg", "avif"):
            r = _run_worker(["codec", name, f"{h}x{w}", *base, str(target or 0)])
            rows.append({"model": name, "size": f"{h}x{w}", "kind": "codec", **r})
    kinds = ["train", "train-compiled"] if compile_train else ["train"]
    trained = [m for m in models if m not in CATALOG or CATALOG[m].kind == "learned"]
    for kind in kinds if train else []:
        for name in trained:
            r = _run_worker([kind, name, "256x256", *base, "0"])
            rows.append({"model": name, "size": "train", "kind": kind, **r})
    _ratios(rows)
    result = {"machine": machine(), "threads": threads, "repeats": repeats, "rows": rows}
    print_tables(result)
    if out is not None:
        from wzcodec.files import atomic_write_bytes

        atomic_write_bytes(out, json.dumps(result, indent=1).encode())
        print(f"\nwrote {out}")
    return result


def _ratios(rows: list[dict]) -> None:
    ref = {
        (r["size"], r["kind"]): r for r in rows if r["model"] == "hyperprior" and "error" not in r
    }
    for r in rows:
        b = ref.get((r["size"], r["kind"]))
        if b is None or "error" in r:
            continue
        for k in ("encode_s", "decode_s", "step_s"):
            if k in r and k in b:
                r[k.replace("_s", "_vs_hyperprior")] = r[k] / b[k]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    import torch

    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}"


def _f(v, fmt: str) -> str:
    return (
        format(v, fmt)
        if isinstance(v, (int, float))
        else format("-", fmt.split(".")[0].rstrip("df"))
    )


def print_tables(result: dict) -> None:
    print(
        f"machine: {result['machine']}; {result['threads']} threads; median of {result['repeats']}"
    )
    cols = [
        ("model", "<12"),
        ("size", ">11"),
        ("bytes", ">9"),
        ("encode s", ">10"),
        ("decode s", ">10"),
        ("enc/hp", ">8"),
        ("dec/hp", ">8"),
        ("peak MB", ">9"),
    ]
    keys = [
        ("model", "<12"),
        ("size", ">11"),
        ("bytes", ">9"),
        ("encode_s", ">10.3f"),
        ("decode_s", ">10.3f"),
        ("encode_vs_hyperprior", ">8.2f"),
        ("decode_vs_hyperprior", ">8.2f"),
        ("peak_rss_mb", ">9.0f"),
    ]
    _table([r for r in result["rows"] if r["kind"] == "codec"], cols, keys)
    cols = [
        ("model", "<12"),
        ("batch", ">14"),
        ("compiled", ">9"),
        ("step s", ">9"),
        ("steps/h", ">9"),
        ("vs hp", ">7"),
        ("peak MB", ">9"),
    ]
    keys = [
        ("model", "<12"),
        ("batch", ">14"),
        ("compiled", ">9"),
        ("step_s", ">9.2f"),
        ("steps_per_hour", ">9.0f"),
        ("step_vs_hyperprior", ">7.2f"),
        ("peak_rss_mb", ">9.0f"),
    ]
    train_rows = [r for r in result["rows"] if r["kind"].startswith("train")]
    if train_rows:
        print()
        _table(train_rows, cols, keys)


def _table(rows: list[dict], cols, keys) -> None:
    head = "".join(format(c, f) for c, f in cols)
    print(head)
    print("-" * len(head))
    for r in rows:
        if "error" in r:
            print(f"{r['model']:<12} error: {r['error']}")
            continue
        print(
            "".join(
                _f(r.get(k), f) if f[-1] in "df" else format(str(r.get(k, "-")), f) for k, f in keys
            )
        )


def main(argv: list[str] | None = None) -> int:
    import argparse

    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        kind, name, size, threads, repeats, left, right, target = argv[1:9]
        h, w = (int(v) for v in size.split("x"))
        res = worker(
            kind,
            name,
            (h, w),
            int(threads),
            int(repeats),
            left or None,
            right or None,
            int(target) or None,
        )
        print(json.dumps(res))
        return 0
    p = argparse.ArgumentParser(prog="wz bench", description=__doc__.split("\n")[0])
    p.add_argument("--models", default="hyperprior,ndic,atn,dsin,atn-paper")
    p.add_argument("--sizes", default=",".join(f"{h}x{w}" for h, w in SIZES))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-train", action="store_true")
    p.add_argument(
        "--compile",
        action="store_true",
        help="also time training with the transforms compiled (needs a C++ compiler)",
    )
    p.add_argument("--pair", nargs=2, metavar=("LEFT", "RIGHT"))
    p.add_argument("--out", default="benchmarks/speed.json")
    a = p.parse_args(argv)
    sizes = [tuple(int(v) for v in s.split("x")) for s in a.sizes.split(",")]
    left, right = a.pair or (None, None)
    run(
        a.models.split(","),
        sizes,
        a.threads,
        a.repeats,
        not a.no_train,
        left,
        right,
        Path(a.out),
        a.compile,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
