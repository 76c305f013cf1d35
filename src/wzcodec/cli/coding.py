"""Coding commands: ``wz encode``, ``decode``, ``decode-seq``, ``info``, ``models``.

Every check a user can fail (paths, model name, quality, rate target, outputs) runs before a
model is loaded; a standard codec's encoder and ``wz info`` never import PyTorch.
"""

from __future__ import annotations

from pathlib import Path

from wzcodec import catalog
from wzcodec.cli.common import (
    STDIO,
    add_force,
    check_readable,
    frames,
    note,
    plan_outputs,
    positive_bpp,
    read_input,
    write_outputs,
)
from wzcodec.errors import WzError
from wzcodec.files import IMAGE_SUFFIXES

# what a standard codec's file may be called (``wz encode -o cam0.heic`` writes it plain)
PLAIN_SUFFIXES = {
    "avif": (".avif",),
    "heic": (".heic", ".heif"),
    "jpeg": (".jpg", ".jpeg"),
    "webp": (".webp",),
    "jxl": (".jxl",),
}
IMAGE_OUT = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


def cmd_encode(a) -> int:
    entry = catalog.entry(a.model)
    if a.quality is not None and a.bpp is not None:
        raise WzError("give --quality or --bpp, not both")
    if a.quality is not None and not 1 <= a.quality <= entry.levels:
        raise WzError(f"quality must be between 1 and {entry.levels}, got {a.quality:g}")
    inputs = frames(a.input, IMAGE_SUFFIXES)
    suffixes = (".wz", *PLAIN_SUFFIXES.get(entry.family, ()))
    plan = plan_outputs(inputs, a.output, ".wz", suffixes, a.force)

    from wzcodec.images import read_rgb, read_rgb_bytes

    rgbs = [read_rgb_bytes(read_input(i)) if i == STDIO else read_rgb(i) for i in inputs]

    import wzcodec
    from wzcodec.bitstream import parse

    codec = wzcodec.load(a.model, quality=a.quality, weights=a.weights)
    blobs, messages = [], []
    for i, (out, rgb) in enumerate(zip(plan.outputs, rgbs, strict=True)):
        data = codec.encode(rgb, bpp=a.bpp, or_smallest=a.or_smallest)
        h = parse(data).header
        plain = out is not None and out.suffix.lower() != ".wz"
        if plain:  # a standard codec's own file, as a camera writes it
            data = codec.plain(data)
        what = f"{h.model}'s {entry.base.upper()} file" if plain else h.model
        name = "stdout" if out is None else str(out)
        messages.append(
            f"{name}: {len(data)} bytes, {len(data) * 8 / (h.height * h.width):.4f} bpp "
            f"({what}, quality {h.quality:g}, {h.width}x{h.height}) from {inputs[i]}"
        )
        blobs.append(data)
    write_outputs(plan, blobs, messages)
    return 0


def _as_wz(path: str, data: bytes, model: str | None, codec_for) -> bytes:
    """A .wz file's bytes as they are; a plain .avif / .heic (a camera's) wrapped by the codec
    of ``model`` (``codec_for(model)``), which must be one over that standard codec."""
    from wzcodec.bitstream import MAGIC

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


def _side_paths(sides: list[str], n_inputs: int) -> list[list[str] | None]:
    """Each input's side images: one --side for all, or one per input (each may be a,b)."""
    if len(sides) > 1 and len(sides) != n_inputs:
        raise WzError(
            f"{len(sides)} side images for {n_inputs} inputs: give one for all, or one each"
        )
    for value in sides:
        for path in value.split(","):
            check_readable(path)
    if not sides:
        return [None] * n_inputs
    return [(sides[i] if len(sides) > 1 else sides[0]).split(",") for i in range(n_inputs)]


def cmd_decode(a) -> int:
    if a.model:
        catalog.entry(a.model)
    inputs = frames(a.input, (".wz", ".avif", ".heic", ".heif"))
    side_paths = _side_paths(a.side or [], len(inputs))
    plan = plan_outputs(inputs, a.output, ".png", IMAGE_OUT, a.force)
    blobs = [read_input(i) for i in inputs]
    from wzcodec.bitstream import MAGIC, parse

    for path, data in zip(inputs, blobs, strict=True):  # headers checked before any model loads
        if data.startswith(MAGIC) or not a.model:
            _as_wz(path, data, a.model, None)
            h = parse(data).header
            if a.model and h.model != a.model:
                raise WzError(f"{path}: was coded by {h.model}, not --model {a.model}")

    import wzcodec
    from wzcodec.images import image_bytes

    codecs: dict[str, wzcodec.Codec] = {}  # one per model; decode checks each file's weights
    prepared: dict[tuple[str, str], wzcodec.PreparedSide] = {}

    def get(model: str) -> wzcodec.Codec:
        if model not in codecs:
            codecs[model] = wzcodec.load(model, weights=a.weights, bf16=False if a.fp32 else None)
        return codecs[model]

    out_blobs, messages = [], []
    for path, out, data, paths in zip(inputs, plan.outputs, blobs, side_paths, strict=True):
        data = _as_wz(path, data, a.model, get)
        header = wzcodec.read_header(data)
        codec = get(header.model)
        side, used = None, ""
        if paths is not None:  # one side image for many files is read and prepared once
            key = (header.model, ",".join(paths))
            if key not in prepared:
                prepared[key] = codec.prepare_side(paths)
                if len(prepared[key].ys) < len(paths):
                    note(
                        f"note: {header.model} uses one side image: {paths[0]} "
                        f"({', '.join(paths[1:])} not used)"
                    )
            side = prepared[key]
            used = f" and side image{'s' if len(side.ys) > 1 else ''} "
            used += ", ".join(paths[: len(side.ys)])
        img = codec.decode(data, side=side)
        suffix = ".png" if out is None else out.suffix
        out_blobs.append(image_bytes(img[..., 0] if header.gray else img, suffix))
        name = "stdout" if out is None else str(out)
        messages.append(
            f"{name}: {header.width}x{header.height}, decoded with {header.model}{used}"
        )
    write_outputs(plan, out_blobs, messages)
    return 0


def _camera_frames(folder: str, names: list[str]) -> list[Path]:
    """The other camera's image of each frame: the file of the same name in ``folder``."""
    d = Path(folder)
    if not d.is_dir():
        raise WzError(f"--camera {d}: not a folder")
    by_stem = {f.stem: f for f in sorted(d.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES}
    missing = [Path(f).name for f in names if Path(f).stem not in by_stem]
    if missing:
        raise WzError(f"--camera {d}: no image named like {missing[0]}")
    return [by_stem[Path(f).stem] for f in names]


def cmd_decode_seq(a) -> int:
    inputs = frames(a.input, (".wz", ".avif", ".heic", ".heif"))
    if STDIO in inputs:
        raise WzError("decode-seq reads files, not standard input")
    output = a.output if a.output.endswith("/") else a.output + "/"
    plan = plan_outputs(inputs, output, ".png", IMAGE_OUT, a.force)
    cameras = [_camera_frames(c, inputs) for c in a.camera or []]
    if a.model:
        catalog.entry(a.model)

    import wzcodec
    from wzcodec.bitstream import MAGIC
    from wzcodec.images import image_bytes
    from wzcodec.sequence import decode_sequence

    blobs = [Path(f).read_bytes() for f in inputs]
    model = a.model or (wzcodec.read_header(blobs[0]).model if blobs[0].startswith(MAGIC) else None)
    if model is None:
        raise WzError(f"{inputs[0]}: not a .wz file; for plain AVIF / HEIC frames give --model")
    codec = wzcodec.load(model, weights=a.weights, bf16=False if a.fp32 else None)
    for i, data in enumerate(blobs):
        blobs[i] = _as_wz(inputs[i], data, model, lambda _: codec)
        if wzcodec.read_header(blobs[i]).model != model:
            raise WzError(f"{inputs[i]}: was coded by another model than {model}")
    if codec.max_sides == 1 and a.refs + len(cameras) > 1:
        note(f"note: {model} uses one side image: the first of each frame's")
    decoded = list(decode_sequence(codec, blobs, a.refs, cameras or None))
    grays = [wzcodec.read_header(d).gray for d in blobs]
    pngs = [
        image_bytes(img[..., 0] if gray else img, ".png")
        for img, gray in zip(decoded, grays, strict=True)
    ]
    sides = f"the {a.refs} previous decoded frames" + (
        f" and {len(cameras)} other camera(s)" if cameras else ""
    )
    messages = [""] * (len(pngs) - 1)
    messages.append(f"{output}: {len(pngs)} frames decoded with {model}, each with {sides}")
    write_outputs(plan, pngs, messages)
    return 0


def cmd_info(a) -> int:
    from wzcodec.bitstream import parse
    from wzcodec.codec import shipped_weights_id

    data = read_input(a.input)
    bs = parse(data)
    h = bs.header
    print(f"file:        {a.input}")
    print(f"model:       {h.model}")
    print(f"weights id:  {h.weights_id.hex()}")
    print(f"quality:     {h.quality:g}")
    print(f"size:        {h.width}x{h.height} ({'gray' if h.gray else 'colour'})")
    entry = catalog.CATALOG.get(h.model)
    if entry is not None and entry.kind != "learned":
        n = len(bs.strings[0])
        base = entry.family.upper()
        print(f"bytes:       {len(data)} ({n} of the {base} file, {len(data) - n} of header)")
    else:
        print(
            f"bytes:       {len(data)} ({sum(len(s) for s in bs.strings)} entropy-coded, "
            f"{len(bs.strings)} strings: {', '.join(str(len(s)) for s in bs.strings)})"
        )
    print(f"bpp:         {len(data) * 8 / (h.height * h.width):.4f}")
    if entry is None:
        verdict = "no: this release has no such model"
    elif entry.kind != "learned":
        verdict = "yes: any receiver of this release refines it"
    elif shipped_weights_id(h.model) == h.weights_id:  # hashes the files, builds no model
        verdict = "yes, with the shipped weights"
    else:
        verdict = "needs the weights that coded it (--weights)"
    print(f"decodable:   {verdict}")
    return 0


def cmd_models(a) -> int:
    from wzcodec.codec import weights_file

    default = catalog.DEFAULT_MODEL
    print(f"{'model':<11} {'kind':<10} {'quality':<8} what it is (default: {default})")
    for name, e in catalog.CATALOG.items():
        shipped = e.kind == "classical" or weights_file(name).exists()
        q = f"1..{e.levels}"
        flag = "" if shipped else " [no shipped weights]"
        print(f"{name:<11} {e.kind:<10} {q:<8} {e.summary}{flag}")
    return 0


def add_parsers(sub) -> None:
    """The coding commands' parsers, in the order ``wz --help`` lists them."""
    _add_encode(sub)
    _add_decode(sub)
    _add_sequence_info_models(sub)


def _add_encode(sub) -> None:
    e = sub.add_parser(
        "encode", help="compress an image into a .wz file (the encoder never sees y)"
    )
    e.add_argument(
        "input",
        nargs="+",
        help="the image x (PNG, JPEG, ...: anything Pillow reads), several, a folder of "
        "images, or - (standard input)",
    )
    e.add_argument(
        "-o",
        "--output",
        required=True,
        help="the .wz file to write (for avif-si / heic-si also .avif / .heic: the plain file "
        "a camera writes), a folder (one <name>.wz per input; made if it ends in /), or - "
        "(standard output)",
    )
    e.add_argument(
        "--model",
        default=catalog.DEFAULT_MODEL,
        help=f"default {catalog.DEFAULT_MODEL}; `wz models` lists every model and codec",
    )
    e.add_argument(
        "--quality",
        type=float,
        help="learned models: 1 (smallest) .. 6, fractions interpolate (default 3); avif-si, "
        "heic-si and the standard codecs: the codec's quality, 1..100 (default 30)",
    )
    e.add_argument(
        "--bpp",
        type=positive_bpp,
        help="instead of --quality: the largest file within B bits per pixel (7-8 encodes); "
        "an error if even quality 1 is larger",
    )
    e.add_argument(
        "--or-smallest",
        action="store_true",
        help="with --bpp: write the smallest file (quality 1) when the target is out of "
        "reach, with a warning, instead of refusing",
    )
    e.add_argument("--weights", help="a .safetensors file instead of the shipped weights")
    add_force(e)
    e.set_defaults(func=cmd_encode, interruptible=True)


def _add_decode(sub) -> None:
    d = sub.add_parser(
        "decode", help="rebuild an image from a .wz file, with the side image if given"
    )
    d.add_argument(
        "input",
        nargs="+",
        help="a .wz file (its header names the model), several, a folder of them, or -",
    )
    d.add_argument(
        "-o",
        "--output",
        required=True,
        help=f"the image to write ({', '.join(IMAGE_OUT)}), a folder (one <name>.png per "
        "input; made if it ends in /), or - (PNG on standard output)",
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
    add_force(d)
    d.set_defaults(func=cmd_decode, interruptible=True)


def _add_sequence_info_models(sub) -> None:
    ds = sub.add_parser(
        "decode-seq",
        help="decode a sequence of frames (each coded alone) in order, each with the decoded "
        "frames before it as side images",
    )
    ds.add_argument("input", nargs="+", help="the coded frames in order, or a folder of them")
    ds.add_argument("-o", "--output", required=True, help="a folder (made if missing)")
    ds.add_argument("--refs", type=int, default=2, help="previous decoded frames used (default 2)")
    ds.add_argument(
        "--camera",
        action="append",
        help="a folder of another camera's frames (same names), used as side images too",
    )
    ds.add_argument("--model", help="for plain .avif / .heic frames: avif-si or heic-si")
    ds.add_argument("--weights", help="the .safetensors file the encoder used, if not shipped")
    ds.add_argument("--fp32", action="store_true", help="decoder transforms in fp32")
    add_force(ds)
    ds.set_defaults(func=cmd_decode_seq, interruptible=True)

    i = sub.add_parser("info", help="print a .wz file's header, size and bpp (no model loaded)")
    i.add_argument("input", help="a .wz file, or - (standard input)")
    i.set_defaults(func=cmd_info)

    m = sub.add_parser("models", help="list every model and standard codec, and what it is for")
    m.set_defaults(func=cmd_models)
