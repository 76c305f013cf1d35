"""Where a model's decode time goes: seconds per decoder part, summed over one ``decode``,
the median of ``--repeats`` decodes after one warm-up (2 threads, the shipped weights, the
motorcycle pair resized to ``--size``, as ``wz bench``):

    python benchmarks/decode_profile.py --models hyperprior,ndic,atn --size 375x1242

Parts are timed with forward hooks on the model's top-level stages (g_s; E_w, E_y, D_y's
stages, D_x's stages, the CAMs; ``latent`` is the entropy decoding of the latents, hyper and
main); "rest" is what no part covers (padding, cropping, glue, the container).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

import torch

import wzcodec
from wzcodec.eval.bench import _pair


def parts(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """The stages worth timing, by a short name."""
    out = {}
    for name in ("g_s", "e_w", "e_y", "h_s"):
        if hasattr(model, name):
            out[name] = getattr(model, name)
    for group in ("d_y", "d_x", "cams"):
        for i, m in enumerate(getattr(model, group, None) or []):
            out[f"{group}[{i}]"] = m
    return out


def profile(name: str, size: tuple[int, int], repeats: int) -> dict[str, float]:
    codec = wzcodec.load(name)
    x, y = _pair(size, None, None)
    data = codec.encode(x)
    model = codec.model
    spent: dict[str, float] = defaultdict(float)
    started: dict[str, float] = {}
    for key, m in parts(model).items():
        m.register_forward_pre_hook(
            lambda _m, _i, k=key: started.__setitem__(k, time.perf_counter())
        )
        m.register_forward_hook(
            lambda _m, _i, _o, k=key: spent.__setitem__(
                k, spent[k] + time.perf_counter() - started[k]
            )
        )
    latent = model.latent
    plain = latent.decompress

    def timed(*args, **kw):
        t = time.perf_counter()
        out = plain(*args, **kw)
        spent["latent"] += time.perf_counter() - t
        return out

    latent.decompress = timed
    runs = []
    for i in range(repeats + 1):
        spent.clear()
        t = time.perf_counter()
        codec.decode(data, side=y)
        total = time.perf_counter() - t
        if i:  # the first decode warms up
            runs.append({**spent, "total": total})
    med = {k: statistics.median(r.get(k, 0.0) for r in runs) for k in runs[0]}
    med["rest"] = med["total"] - sum(v for k, v in med.items() if k != "total")
    return med


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="hyperprior,ndic,atn")
    ap.add_argument("--size", default="375x1242", help="HxW")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    wzcodec.reuse_freed_memory()  # as `wz` and `wz bench`
    h, w = (int(v) for v in a.size.split("x"))
    for name in a.models.split(","):
        med = profile(name, (h, w), a.repeats)
        total = med.pop("total")
        print(f"{name} {h}x{w}: decode {total:.3f} s")
        for k, v in sorted(med.items(), key=lambda kv: -kv[1]):
            print(f"  {k:10s} {v:6.3f} s  {100 * v / total:5.1f}%")


if __name__ == "__main__":
    main()
