"""``wz``: argument parsing only; every command calls the Python API.

Errors a user can cause print one line to stderr and exit with status 2 (no traceback, and no
partial output file: outputs are written to a temporary file and renamed).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints usage + message)
        print(f"wz: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _fail(message: str) -> int:
    print(f"wz: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _check_writable(path: Path) -> None:
    from wzcodec.errors import WzError

    if path.is_dir():
        raise WzError(f"{path}: is a directory")
    if not path.parent.exists():
        raise WzError(f"{path}: folder {path.parent} does not exist")


def _outputs(inputs: list[str], output: str, suffix: str) -> list[Path]:
    """Where each input's result goes: ``output`` itself for one input, else (or when
    ``output`` is a folder) ``output/<input stem><suffix>``."""
    from wzcodec.errors import WzError

    out = Path(output)
    if not out.is_dir():
        if len(inputs) > 1:
            raise WzError(f"{out}: {len(inputs)} inputs need an existing folder as output")
        _check_writable(out)
        return [out]
    paths = [out / (Path(i).stem + suffix) for i in inputs]
    seen: dict[Path, str] = {}
    for i, path in zip(inputs, paths, strict=True):
        if path in seen:
            raise WzError(f"{seen[path]} and {i} would both be written to {path}")
        seen[path] = i
    return paths


def cmd_encode(a) -> int:
    from wzcodec.files import IMAGE_SUFFIXES

    a.input = [str(p) for p in _frames(a.input, IMAGE_SUFFIXES)]  # files, or a folder's images
    outs = _outputs(a.input, a.output, ".wz")
    for path in a.input:
        _check_readable(path)  # before PyTorch loads: a typo costs no seconds

    import wzcodec
    from wzcodec.files import atomic_write_bytes

    codec = wzcodec.load(a.model, quality=a.quality, weights=a.weights)
    coded = [codec.encode(path, bpp=a.bpp) for path in a.input]  # every input, then outputs
    for out, data in zip(outs, coded, strict=True):
        atomic_write_bytes(out, data)
        h = wzcodec.read_header(data)
        print(
            f"{out}: {len(data)} bytes, {len(data) * 8 / (h.height * h.width):.4f} bpp "
            f"({h.model}, quality {h.quality:g}, {h.width}x{h.height})"
        )
    return 0


def _as_wz(path, data: bytes, model: str | None, codec_for) -> bytes:
    """A .wz file's bytes as they are; a plain .avif / .heic (a camera's) wrapped by the codec
    of ``model`` (``codec_for(model)``), which must be one over that base codec."""
    from wzcodec.bitstream import MAGIC
    from wzcodec.errors import WzError

    if data.startswith(MAGIC):
        return data
    if not model:
        raise WzError(
            f"{path}: not a .wz file; to refine a plain AVIF or HEIC file, "
            "give --model avif-si or heic-si"
        )
    data = codec_for(model).wrap(data)
    if not data.startswith(MAGIC):
        raise WzError(f"{path}: neither a .wz file nor a file {model} refines")
    return data


def cmd_decode(a) -> int:
    from wzcodec.errors import WzError

    sides = a.side or []
    if len(sides) > 1 and len(sides) != len(a.input):
        raise WzError(
            f"{len(sides)} side images for {len(a.input)} inputs: give one for all, or one each"
        )
    outs = _outputs(a.input, a.output, ".png")
    blobs = [_read_bytes(path) for path in a.input]
    for value in sides:
        for path in value.split(","):
            _check_readable(path)

    import wzcodec
    from wzcodec.files import atomic_write_bytes
    from wzcodec.images import image_bytes

    codecs: dict[str, wzcodec.Codec] = {}  # one per model; decode checks each file's weights
    prepared: dict[tuple[str, str], wzcodec.PreparedSide] = {}
    decoded = []

    def get(model: str) -> wzcodec.Codec:
        if model not in codecs:
            codecs[model] = wzcodec.load(model, weights=a.weights, bf16=False if a.fp32 else None)
        return codecs[model]

    for i, (out, data) in enumerate(zip(outs, blobs, strict=True)):
        data = _as_wz(a.input[i], data, a.model, get)
        header = wzcodec.read_header(data)
        if a.model and header.model != a.model:
            raise WzError(f"{a.input[i]}: was coded by {header.model}, not --model {a.model}")
        codec = get(header.model)
        side_path = sides[i] if len(sides) > 1 else (sides[0] if sides else None)
        side, note = None, ""
        if side_path is not None:  # one side image for many files is read and prepared once
            paths = side_path.split(",")  # several side images: a,b
            key = (header.model, side_path)
            if key not in prepared:
                prepared[key] = codec.prepare_side(paths)
                if len(prepared[key].ys) < len(paths):
                    print(
                        f"note: {header.model} uses one side image: {paths[0]} "
                        f"({', '.join(paths[1:])} not used)",
                        file=sys.stderr,
                    )
            side = prepared[key]
            used = paths[: len(side.ys)]
            note = f" and side image{'s' if len(used) > 1 else ''} {', '.join(used)}"
        img = codec.decode(data, side=side)
        message = f"{out}: {header.width}x{header.height}, decoded with {header.model}{note}"
        decoded.append((image_bytes(img[..., 0] if header.gray else img, out.suffix), message))
    for out, (png, message) in zip(outs, decoded, strict=True):  # only once all decoded
        atomic_write_bytes(out, png)
        print(message)
    return 0


def _frames(inputs: list[str], suffixes: tuple[str, ...]) -> list[Path]:
    """A sequence's files in order: the files given, or a folder's files (by name)."""
    from wzcodec.errors import WzError

    if len(inputs) == 1 and Path(inputs[0]).is_dir():
        files = sorted(f for f in Path(inputs[0]).iterdir() if f.suffix.lower() in suffixes)
        if not files:
            raise WzError(f"{inputs[0]}: a directory with no {', '.join(suffixes)} files")
        return files
    return [_check_readable(i) for i in inputs]


def _camera_frames(folder: str, frames: list[Path]) -> list[Path]:
    """The other camera's image of each frame: the file of the same name in ``folder``."""
    from wzcodec.errors import WzError
    from wzcodec.files import IMAGE_SUFFIXES

    d = Path(folder)
    if not d.is_dir():
        raise WzError(f"--camera {d}: not a folder")
    by_stem = {f.stem: f for f in sorted(d.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES}
    missing = [f.name for f in frames if f.stem not in by_stem]
    if missing:
        raise WzError(f"--camera {d}: no image named like {missing[0]}")
    return [by_stem[f.stem] for f in frames]


def cmd_decode_seq(a) -> int:
    from wzcodec.errors import WzError

    frames = _frames(a.input, (".wz", ".avif", ".heic", ".heif"))
    out_dir = Path(a.output)
    if not out_dir.is_dir():
        raise WzError(f"{out_dir}: output folder does not exist")
    outs = _outputs([str(f) for f in frames], str(out_dir), ".png")
    cameras = [_camera_frames(c, frames) for c in a.camera or []]

    import wzcodec
    from wzcodec.bitstream import MAGIC
    from wzcodec.files import atomic_write_bytes
    from wzcodec.images import image_bytes
    from wzcodec.sequence import decode_sequence

    blobs = [f.read_bytes() for f in frames]
    model = a.model or (wzcodec.read_header(blobs[0]).model if blobs[0].startswith(MAGIC) else None)
    if model is None:
        raise WzError(f"{frames[0]}: not a .wz file; for plain AVIF / HEIC frames give --model")
    codec = wzcodec.load(model, weights=a.weights, bf16=False if a.fp32 else None)
    for i, data in enumerate(blobs):
        blobs[i] = _as_wz(frames[i], data, model, lambda _: codec)
        if wzcodec.read_header(blobs[i]).model != model:
            raise WzError(f"{frames[i]}: was coded by another model than {model}")
    if codec.max_sides == 1 and a.refs + len(cameras) > 1:
        print(f"note: {model} uses one side image: the first of each frame's", file=sys.stderr)
    decoded = list(decode_sequence(codec, blobs, a.refs, cameras or None))
    grays = [wzcodec.read_header(d).gray for d in blobs]
    for out, img, gray in zip(outs, decoded, grays, strict=True):  # only once all decoded
        atomic_write_bytes(out, image_bytes(img[..., 0] if gray else img, out.suffix))
    sides = f"the {a.refs} previous decoded frames" + (
        f" and {len(cameras)} other camera(s)" if cameras else ""
    )
    print(f"{out_dir}/: {len(outs)} frames decoded with {model}, each with {sides}")
    return 0


def cmd_eval_seq(a) -> int:
    import json

    from wzcodec.errors import WzError
    from wzcodec.files import IMAGE_SUFFIXES

    frames = _frames(a.frames, IMAGE_SUFFIXES)
    if a.limit:
        frames = frames[: a.limit]
    if len(frames) < 2:
        raise WzError("a sequence needs at least 2 frames")
    out = Path(a.out)
    if not out.parent.is_dir():
        raise WzError(f"{out}: folder {out.parent} does not exist")

    import wzcodec
    from wzcodec.files import atomic_write_bytes
    from wzcodec.sequence import measure, plot_gain, summarize

    codec = wzcodec.load(a.model)
    qualities = [float(q) for q in a.qualities.split(",")] if a.qualities else codec.qualities
    rows = measure(codec, frames, qualities, a.refs)
    summary = {"model": a.model, "frame_files": [str(f) for f in frames], "refs": a.refs}
    summary.update(summarize(rows))
    out.mkdir(exist_ok=True)
    lines = [",".join(rows[0])] + [
        ",".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in r.values()) for r in rows
    ]
    atomic_write_bytes(out / "per_frame.csv", ("\n".join(lines) + "\n").encode())
    atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=1).encode())
    plot_gain(rows, out / "gain_over_frames.png", f"{a.model}, {len(frames)} frames")
    print(
        f"{a.model} over {len(frames)} frames, refs {a.refs}: BD-rate "
        f"{summary['bd_rate_seq_vs_base']:+.1f}% vs the base alone, "
        f"{summary['bd_rate_seq_vs_true']:+.1f}% vs the true previous frames "
        f"(which give {summary['bd_rate_true_vs_base']:+.1f}%); gain at the lowest rate "
        f"{summary['gain_first_half_db']:+.3f} dB in the first half, "
        f"{summary['gain_second_half_db']:+.3f} dB in the second"
    )
    print(f"wrote per_frame.csv, summary.json, gain_over_frames.png in {out}/")
    return 0


def cmd_info(a) -> int:
    import wzcodec
    from wzcodec.bitstream import parse

    data = _read_bytes(a.input)
    bs = parse(data)
    h = bs.header
    print(f"file:        {a.input}")
    print(f"model:       {h.model}")
    print(f"weights id:  {h.weights_id.hex()}")
    print(f"quality:     {h.quality:g}")
    print(f"size:        {h.width}x{h.height} ({'gray' if h.gray else 'colour'})")
    from wzcodec.models import MODELS

    if h.model in MODELS and not MODELS[h.model].entropy_coded:
        base = MODELS[h.model].base_codec.upper()
        n = len(bs.strings[0])
        print(f"bytes:       {len(data)} ({n} of the {base} file, {len(data) - n} of header)")
    else:
        print(
            f"bytes:       {len(data)} ({sum(len(s) for s in bs.strings)} entropy-coded, "
            f"{len(bs.strings)} strings: {', '.join(str(len(s)) for s in bs.strings)})"
        )
    print(f"bpp:         {len(data) * 8 / (h.height * h.width):.4f}")
    shipped = h.model in wzcodec.available() and wzcodec.load(h.model).weights_id == h.weights_id
    print(f"decodable:   {'yes, with the shipped weights' if shipped else 'needs other weights'}")
    return 0


def cmd_demo(a) -> int:
    from wzcodec.demo import run_demo

    run_demo(Path(a.out), models=a.models.split(",") if a.models else None, quality=a.quality)
    return 0


def cmd_train(a) -> int:
    import yaml

    from wzcodec.errors import WzError
    from wzcodec.training import train

    overrides = {}
    for item in a.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise WzError(f"--set takes KEY=VALUE, got {item!r}")
        overrides[key] = yaml.safe_load(value)
    if a.device:
        overrides["device"] = a.device

    train(
        a.config,
        a.out or Path("runs") / Path(a.config).stem,
        resume=a.resume,
        max_steps=a.max_steps,
        max_minutes=a.max_minutes,
        overrides=overrides,
    )
    return 0


def cmd_export(a) -> int:
    from wzcodec.weights import export

    path = export(a.checkpoint, a.out, name=a.name, fp16=not a.fp32, base=a.base)
    print(f"wrote {path} and {path.with_suffix('.json')}")
    return 0


def cmd_eval(a) -> int:
    from wzcodec.errors import WzError
    from wzcodec.evaluate import (
        check_mergeable,
        evaluate,
        load_pairs,
        merge_rows,
        print_summary,
        read_reference,
        read_rows,
        side_label,
        write_outputs,
    )

    qualities = [float(q) for q in a.qualities.split(",")] if a.qualities else None
    reference = read_reference(a.reference) if a.reference else None
    sources = a.source.split(",") if a.source else None
    split = None if a.split == "all" else a.split
    try:
        sides = [int(k) for k in a.sides.split(",")] if a.sides else None
    except ValueError:
        raise WzError(f"--sides {a.sides}: give side numbers, e.g. 1,2") from None
    pairs = load_pairs(a.data, split, a.protocol, a.limit, a.every, sources, sides)
    if a.merge:
        earlier = read_rows(a.merge)
        check_mergeable([name for name, _, _ in pairs], earlier)
    rows = evaluate(
        pairs,
        a.models.split(","),
        qualities,
        side_mode=a.side,
        estimate=not a.no_estimate,
        workers=a.workers,
        suffix=side_label(pairs, sides),
    )
    if a.merge:
        rows = merge_rows(rows, earlier)
    title = f"{a.data.split(':')[0]} {a.split} ({a.protocol}, {len(pairs)} pairs)"
    result = write_outputs(rows, Path(a.out), a.anchor, title, reference, a.side)
    from wzcodec.report import make_views, write_report

    views = make_views(pairs, a.models.split(",")) if a.side == "true" else []
    write_report(Path(a.out), title, a.side, views)
    print_summary(result, a.anchor)
    print(
        "\nwrote per_image.csv, summary.json, bd_rate.csv, rd_psnr.png, rd_msssim.png and "
        f"report.html in {a.out}/"
    )
    return 0


def cmd_bd_rate(a) -> int:
    from wzcodec.evaluate import read_rows
    from wzcodec.reports import bd_rates, combined_rows

    rows = combined_rows([read_rows(r) for r in a.runs])
    print(bd_rates(rows, a.anchor, a.group, a.max_bpp))
    return 0


def cmd_side_gaps(a) -> int:
    from wzcodec.errors import WzError
    from wzcodec.evaluate import read_rows
    from wzcodec.reports import MODES, markdown, side_gaps

    modes = [m for m in MODES if (Path(a.side_runs) / m / "per_image.csv").exists()]
    if not modes:
        raise WzError(f"no {'/'.join(MODES)} runs under {a.side_runs}")
    runs = {m: read_rows(Path(a.side_runs) / m) for m in modes}
    print(markdown(side_gaps(read_rows(a.true_run), runs), modes))
    return 0


def cmd_equal_bpp(a) -> int:
    from wzcodec.reports import compare

    path = Path(a.run)
    path = _check_readable(str(path / "per_image.csv" if path.is_dir() else path))
    rows = compare(str(path), a.a, a.b)
    if not rows:
        from wzcodec.errors import WzError

        raise WzError(f"{path}: no image has both {a.a} and {a.b} at overlapping rates")
    print(f"quality of {a.a}: images, {a.a} better, mean PSNR({a.a}) - PSNR({a.b})")
    for q, n, wins, mean in rows:
        print(f"  q{q:g}: {n} images, better on {wins}, {mean:+.2f} dB")
    return 0


def cmd_plot(a) -> int:
    from wzcodec.errors import WzError
    from wzcodec.evaluate import plot, read_rows, summarize
    from wzcodec.reports import plot_gain

    _check_writable(Path(a.out))
    rows = read_rows(a.run)
    want = a.models.split(",")
    missing = sorted(set(want) - {r["model"] for r in rows})
    if missing:
        raise WzError(f"{a.run} has no rows of {', '.join(missing)}")
    summary = summarize([r for r in rows if r["model"] in want])
    title = a.title or Path(a.run).name
    if a.gain:
        plot_gain(summary["all"], Path(a.out), title)
    else:
        plot(summary, Path(a.out), a.metric, title)
    print(f"wrote {a.out}")
    return 0


def cmd_report(a) -> int:
    import json

    from wzcodec.errors import WzError

    run = Path(a.run)
    if not (run / "summary.json").is_file():
        raise WzError(f"{run}: not a wz eval run folder (no summary.json)")
    from wzcodec.report import _mode, make_views, write_report

    views = None
    if a.data:
        from wzcodec.evaluate import load_pairs

        split = None if a.split == "all" else a.split
        pairs = load_pairs(a.data, split, a.protocol, None, a.every)
        views = make_views(pairs, [a.model])
    title = a.title or json.loads((run / "summary.json").read_text()).get("title") or run.name
    path = write_report(run, title, _mode(run) or "true", views)
    print(f"wrote {path}")
    return 0


def cmd_visualize(a) -> int:
    import wzcodec
    from wzcodec.visualize import attention_maps, common_local

    out = Path(a.out)
    if not out.is_dir():
        raise wzcodec.WzError(f"{out}: output folder does not exist")
    codec = wzcodec.load(a.model, quality=a.quality, weights=a.weights)
    print(common_local(codec, a.input, a.side, out))
    if a.pixel:
        try:
            px, py = (int(v) for v in a.pixel.split(","))
        except ValueError:
            raise wzcodec.WzError(f"--pixel must be X,Y (integers), got {a.pixel!r}") from None
        print(attention_maps(codec, a.input, a.side, (px, py), out))
    return 0


def cmd_bench(a) -> int:
    from wzcodec.bench import main as bench_main

    return bench_main(a.args[1:] if a.args[:1] == ["--"] else a.args)  # main() adds the "--"


def _check_readable(path: str) -> Path:
    from wzcodec.errors import WzError

    p = Path(path)
    if not p.is_file():
        raise WzError(f"{p}: {'is a directory' if p.is_dir() else 'no such file'}")
    return p


def _read_bytes(path: str) -> bytes:
    return _check_readable(path).read_bytes()


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="wz", description="Image compression with side information at the decoder.")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    e = sub.add_parser(
        "encode", help="compress an image into a .wz file (the encoder never sees y)"
    )
    e.add_argument(
        "input", nargs="+", help="the image x (PNG, JPEG, ...: anything Pillow reads), or several"
    )
    e.add_argument(
        "-o",
        "--output",
        required=True,
        help="the .wz file to write, or a folder (one <name>.wz per input)",
    )
    e.add_argument(
        "--model",
        default="hyperprior",
        help="hyperprior (default), ndic, atn, dsin, dsin-atn, atn-paper; avif-si, heic-si "
        "(a standard codec's file, refined with y at the receiver)",
    )
    e.add_argument(
        "--quality",
        type=float,
        help="learned models: 1 (smallest) .. 6, fractions interpolate (default 3); avif-si, "
        "heic-si: the base codec's quality, 1..100 (default 30)",
    )
    e.add_argument(
        "--bpp", type=float, help="instead of --quality: the largest file within B bits per pixel"
    )
    e.add_argument("--weights", help="a .safetensors file instead of the shipped weights")
    e.set_defaults(func=cmd_encode)

    d = sub.add_parser(
        "decode", help="rebuild an image from a .wz file, with the side image if given"
    )
    d.add_argument(
        "input", nargs="+", help="a .wz file (its header names the model and weights), or several"
    )
    d.add_argument(
        "-o",
        "--output",
        required=True,
        help="the image to write (PNG, ...), or a folder (one <name>.png per input)",
    )
    d.add_argument(
        "--side",
        action="append",
        help="the decoder's side image (same size as the coded image), or several: a.png,b.png "
        "(avif-si, heic-si use them all; other models the first); with several inputs, once "
        "for all or once per input, in order",
    )
    d.add_argument(
        "--model",
        help="for a plain .avif / .heic file (a camera's): the model that refines it, "
        "avif-si or heic-si (a .wz file names its own model)",
    )
    d.add_argument("--weights", help="the .safetensors file the encoder used, if not shipped")
    d.add_argument(
        "--fp32", action="store_true", help="decoder transforms in fp32 even where bf16 is native"
    )
    d.set_defaults(func=cmd_decode)

    ds = sub.add_parser(
        "decode-seq",
        help="decode a sequence of frames (each coded alone) in order, each with the decoded "
        "frames before it as side images",
    )
    ds.add_argument("input", nargs="+", help="the coded frames in order, or a folder of them")
    ds.add_argument("-o", "--output", required=True, help="an existing folder: <name>.png each")
    ds.add_argument("--refs", type=int, default=2, help="previous decoded frames used (default 2)")
    ds.add_argument(
        "--camera",
        action="append",
        help="a folder of another camera's frames (same names), used as side images too",
    )
    ds.add_argument("--model", help="for plain .avif / .heic frames: avif-si or heic-si")
    ds.add_argument("--weights", help="the .safetensors file the encoder used, if not shipped")
    ds.add_argument("--fp32", action="store_true", help="decoder transforms in fp32")
    ds.set_defaults(func=cmd_decode_seq)

    es = sub.add_parser(
        "eval-seq",
        help="code a sequence frame by frame; PSNR of the base, the fed-forward decode and "
        "the true previous frames",
    )
    es.add_argument("frames", nargs="+", help="frame images in order, or a folder of them")
    es.add_argument("--model", default="avif-si")
    es.add_argument("--qualities", help="e.g. 2,10,20,30 (default: the model's sweep)")
    es.add_argument("--refs", type=int, default=2)
    es.add_argument("--limit", type=int, help="only the first N frames")
    es.add_argument("--out", required=True)
    es.set_defaults(func=cmd_eval_seq)

    i = sub.add_parser("info", help="print a .wz file's header, size and bpp")
    i.add_argument("input")
    i.set_defaults(func=cmd_info)

    m = sub.add_parser(
        "demo", help="compress the bundled sample pairs with every shipped model and JPEG"
    )
    m.add_argument("--out", default="demo-out")
    m.add_argument("--models", help="comma-separated model names (default: all shipped)")
    m.add_argument("--quality", type=float, help="default: each model's own (3; avif-si 30)")
    m.set_defaults(func=cmd_demo)

    v = sub.add_parser("eval", help="rate-distortion of models and classical codecs on real pairs")
    v.add_argument(
        "--data",
        required=True,
        help="a data spec: stereo:DIR, rig:DIR, frames:CSV, photos:CSV, "
        "pairs:LEFT_DIR,RIGHT_DIR (your own folders, files paired by name), ...",
    )
    v.add_argument("--split", default="test", help="train, test, ... or all")
    v.add_argument(
        "--models",
        default="hyperprior,jpeg,webp,avif,jxl,heic",
        help="classical codecs (jpeg, webp, avif, avif-s2 = libaom speed 2, jxl, heic, "
        "heic-slow = x265 placebo), hevc-p / hevc-i (x265 coding x after y as a P-frame / "
        "intra: the encoder-sees-y ceiling), learned models, or NAME=WEIGHTS.safetensors[@LABEL] "
        "(LABEL: its name in the outputs)",
    )
    v.add_argument(
        "--qualities",
        help="models' qualities, e.g. 1,2,3,4,5,6 (learned) or 20,50 (avif-si: its base's setting; "
        "default: each model's sweep)",
    )
    v.add_argument("--protocol", choices=["native", "paper"], default="native")
    v.add_argument("--anchor", default="hyperprior", help="BD-rate reference method")
    v.add_argument("--limit", type=int, help="only the first N pairs")
    v.add_argument("--every", type=int, default=1, help="only every K-th pair (spread subset)")
    v.add_argument("--source", help="only these sources, comma-separated (e.g. kodak)")
    v.add_argument(
        "--reference", help="CSV of published curves (method,bpp,psnr) to plot and rank beside"
    )
    v.add_argument(
        "--side",
        choices=["true", "other", "shifted", "dark", "none", "oracle", "decoded"],
        default="true",
        help="what the decoder gets as side image (stress tests: a lying or no y; oracle: y = x; "
        "decoded: y as its camera sent it, same codec and quality)",
    )
    v.add_argument(
        "--sides",
        help="with a rig: set (x = left(t)): which side images the decoder gets, 1-based: "
        "1 = right(t), 2 = left(t-1), 3 = right(t-1); e.g. 1,2 (default all); side models' "
        "names get the choice, e.g. avif-si[y1+y2]",
    )
    v.add_argument("--workers", type=int, default=1, help="images coded at once, one process each")
    v.add_argument("--no-estimate", action="store_true", help="skip the likelihood bpp estimate")
    v.add_argument(
        "--merge",
        help="an earlier run (folder or per_image.csv) on the same pairs: its rows of methods "
        "not measured now join the outputs (add or re-run a model without re-running the rest)",
    )
    v.add_argument("--out", required=True)
    v.set_defaults(func=cmd_eval)

    bdp = sub.add_parser(
        "bd-rate", help="BD-rate of every method of one or more eval runs against any one"
    )
    bdp.add_argument(
        "anchor",
        help="the reference method, e.g. heic or 'avif-si[y1]', or best-classical (the "
        "strongest classical codec of the runs at each quality)",
    )
    bdp.add_argument("runs", nargs="+", help="wz eval run folders (or per_image.csv files)")
    bdp.add_argument("--group", default="all", help="all, gray or color")
    bdp.add_argument("--max-bpp", type=float, help="only rate points of at most B bpp")
    bdp.set_defaults(func=cmd_bd_rate)

    sgp = sub.add_parser(
        "side-gaps", help="table of side images that lie: true y vs each --side run"
    )
    sgp.add_argument("true_run", help="the run with the true y (folder or per_image.csv)")
    sgp.add_argument("side_runs", help="a folder holding one run per --side mode (other, ...)")
    sgp.set_defaults(func=cmd_side_gaps)

    eq = sub.add_parser(
        "equal-bpp", help="per rate point: PSNR of method A minus B's at A's bpp, per image"
    )
    eq.add_argument("run", help="a wz eval run folder or its per_image.csv")
    eq.add_argument("a")
    eq.add_argument("b")
    eq.set_defaults(func=cmd_equal_bpp)

    pl = sub.add_parser("plot", help="RD plot (or gain over the base decode) of chosen methods")
    pl.add_argument("run", help="a wz eval run folder (or its per_image.csv)")
    pl.add_argument("--models", required=True, help="comma-separated methods to draw")
    pl.add_argument("--metric", default="psnr", choices=["psnr", "ms_ssim_db"])
    pl.add_argument("--title", default="")
    pl.add_argument("--gain", action="store_true", help="PSNR over the base decode, same bytes")
    pl.add_argument("--out", required=True, help="the PNG to write")
    pl.set_defaults(func=cmd_plot)

    rp = sub.add_parser(
        "report", help="(re)write a wz eval run's report.html, optionally with new image views"
    )
    rp.add_argument("run", help="a wz eval output folder")
    rp.add_argument("--title")
    rp.add_argument("--data", help="re-code a few of these pairs for the per-image views")
    rp.add_argument("--split", default="test")
    rp.add_argument("--every", type=int, default=1)
    rp.add_argument("--protocol", choices=["native", "paper"], default="native")
    rp.add_argument("--model", default="avif-si", help="the side model of the views")
    rp.set_defaults(func=cmd_report)

    z = sub.add_parser("visualize", help="common/local information and attention-map pictures")
    z.add_argument("input")
    z.add_argument("--side", required=True)
    z.add_argument("--model", default="atn")
    z.add_argument("--weights")
    z.add_argument("--quality", type=float, default=3.0)
    z.add_argument("--pixel", help="X,Y of a pixel of x whose attention over y to draw (atn)")
    z.add_argument("--out", default=".")
    z.set_defaults(func=cmd_visualize)

    b = sub.add_parser("bench", help="speed and memory benchmark (see benchmarks/speed.py)")
    b.add_argument("args", nargs=argparse.REMAINDER, help="options of benchmarks/speed.py")
    b.set_defaults(func=cmd_bench)

    t = sub.add_parser("train", help="train a model from a YAML config")
    t.add_argument("--config", required=True)
    t.add_argument("--out", help="run folder (default runs/<config name>)")
    t.add_argument("--resume", action="store_true")
    t.add_argument("--max-steps", type=int)
    t.add_argument("--max-minutes", type=float)
    t.add_argument("--device", help="cpu (default) or cuda; same as --set device=...")
    t.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a top-level config key (YAML value), e.g. --set crop=128",
    )
    t.set_defaults(func=cmd_train)

    x = sub.add_parser(
        "export", help="write shipping weights (safetensors + json) from a checkpoint"
    )
    x.add_argument("checkpoint")
    x.add_argument("--out", default="src/wzcodec/weights")
    x.add_argument("--name")
    x.add_argument(
        "--base",
        help="weights file of a frozen base to reference instead of copying: dsin's "
        "hyperprior, or a model whose frozen parts are the base's (ndic or atn-paper over atn)",
    )
    x.add_argument("--fp32", action="store_true", help="keep fp32 (default stores fp16)")
    x.set_defaults(func=cmd_export)
    return p


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", category=FutureWarning)
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # every option, --help too, is speed.py's
        argv = ["bench", "--", *argv[1:]]
    args = build_parser().parse_args(argv)
    from wzcodec.errors import WzError
    from wzcodec.memory import reuse_freed_memory

    reuse_freed_memory()  # large feature maps reused, not page-faulted afresh: see memory.py

    try:
        return args.func(args)
    except WzError as e:
        return _fail(str(e))
    except BrokenPipeError:  # `wz bd-rate ... | head`: the reader left; nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:  # unwritable output, full disk, permission denied ...
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        return _fail(f"{where}{e.strerror or e}")
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
