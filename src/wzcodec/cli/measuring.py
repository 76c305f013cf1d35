"""Measuring commands: ``wz eval``, ``eval-seq``, ``bd-rate``, ``side-gaps``, ``equal-bpp``,
``plot``, ``report``, ``visualize``, ``bench`` and ``demo``. Each parses its options and calls
the harness (``evaluate``, ``reports``, ``report``, ``sequence``, ``bench``, ``demo``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from wzcodec.cli.common import check_readable, check_writable
from wzcodec.cli.common import frames as list_frames
from wzcodec.errors import WzError


def cmd_eval_seq(a) -> int:
    import json

    from wzcodec.files import IMAGE_SUFFIXES

    frames = [Path(f) for f in list_frames(a.frames, IMAGE_SUFFIXES)]
    if a.limit:
        frames = frames[: a.limit]
    if len(frames) < 2:
        raise WzError("a sequence needs at least 2 frames")
    out = Path(a.out)
    if not out.parent.is_dir():
        raise WzError(f"{out}: folder {out.parent} does not exist")

    import wzcodec
    from wzcodec.eval.sequence import measure, plot_gain, summarize
    from wzcodec.files import atomic_write_bytes

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


def cmd_demo(a) -> int:
    from wzcodec.eval.demo import run_demo

    run_demo(Path(a.out), models=a.models.split(",") if a.models else None, quality=a.quality)
    return 0


def cmd_eval(a) -> int:
    from wzcodec.eval.outputs import print_summary, write_outputs
    from wzcodec.eval.results import check_mergeable, merge_rows, read_reference, read_rows
    from wzcodec.eval.run import evaluate, load_pairs, side_label

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
    from wzcodec.eval.html import make_views, write_report

    views = make_views(pairs, a.models.split(",")) if a.side == "true" else []
    write_report(Path(a.out), title, a.side, views)
    print_summary(result, a.anchor)
    print(
        "\nwrote per_image.csv, summary.json, bd_rate.csv, rd_psnr.png, rd_msssim.png and "
        f"report.html in {a.out}/"
    )
    return 0


def cmd_bd_rate(a) -> int:
    from wzcodec.eval.results import read_rows
    from wzcodec.eval.tables import bd_rates, combined_rows

    rows = combined_rows([read_rows(r) for r in a.runs])
    print(bd_rates(rows, a.anchor, a.group, a.max_bpp))
    return 0


def cmd_side_gaps(a) -> int:
    from wzcodec.eval.results import read_rows
    from wzcodec.eval.tables import MODES, markdown, side_gaps

    modes = [m for m in MODES if (Path(a.side_runs) / m / "per_image.csv").exists()]
    if not modes:
        raise WzError(f"no {'/'.join(MODES)} runs under {a.side_runs}")
    runs = {m: read_rows(Path(a.side_runs) / m) for m in modes}
    print(markdown(side_gaps(read_rows(a.true_run), runs), modes))
    return 0


def cmd_equal_bpp(a) -> int:
    from wzcodec.eval.tables import compare

    path = Path(a.run)
    path = check_readable(str(path / "per_image.csv" if path.is_dir() else path))
    rows = compare(str(path), a.a, a.b)
    if not rows:
        raise WzError(f"{path}: no image has both {a.a} and {a.b} at overlapping rates")
    print(f"quality of {a.a}: images, {a.a} better, mean PSNR({a.a}) - PSNR({a.b})")
    for q, n, wins, mean in rows:
        print(f"  q{q:g}: {n} images, better on {wins}, {mean:+.2f} dB")
    return 0


def cmd_plot(a) -> int:
    from wzcodec.eval.outputs import plot
    from wzcodec.eval.results import read_rows, summarize
    from wzcodec.eval.tables import plot_gain

    check_writable(Path(a.out))
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

    run = Path(a.run)
    if not (run / "summary.json").is_file():
        raise WzError(f"{run}: not a wz eval run folder (no summary.json)")
    from wzcodec.eval.html import make_views, side_mode_of, write_report

    views = None
    if a.data:
        from wzcodec.eval.run import load_pairs

        split = None if a.split == "all" else a.split
        pairs = load_pairs(a.data, split, a.protocol, None, a.every)
        from wzcodec.eval.results import read_rows

        models = [a.model] if a.model else list(dict.fromkeys(r["model"] for r in read_rows(run)))
        views = make_views(pairs, models)
    title = a.title or json.loads((run / "summary.json").read_text()).get("title") or run.name
    path = write_report(run, title, side_mode_of(run) or "true", views)
    print(f"wrote {path}")
    return 0


def cmd_visualize(a) -> int:
    import wzcodec
    from wzcodec.eval.pictures import attention_maps, common_local

    out = Path(a.out)
    if not out.is_dir():
        raise WzError(f"{out}: output folder does not exist")
    codec = wzcodec.load(a.model, quality=a.quality, weights=a.weights)
    print(common_local(codec, a.input, a.side, out))
    if a.pixel:
        try:
            px, py = (int(v) for v in a.pixel.split(","))
        except ValueError:
            raise WzError(f"--pixel must be X,Y (integers), got {a.pixel!r}") from None
        print(attention_maps(codec, a.input, a.side, (px, py), out))
    return 0


def cmd_bench(a) -> int:
    from wzcodec.eval.bench import main as bench_main

    return bench_main(a.args[1:] if a.args[:1] == ["--"] else a.args)  # main() adds the "--"


def add_parsers(sub) -> None:
    """The measuring commands' parsers, in the order ``wz --help`` lists them."""
    _add_sequence_and_demo(sub)
    _add_eval(sub)
    _add_tables(sub)
    _add_report_pictures_bench(sub)


def _add_sequence_and_demo(sub) -> None:
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

    m = sub.add_parser(
        "demo",
        help="the bundled pairs as plain AVIF / HEIC and refined with and without y; bits "
        "saved at equal PSNR, and a labelled picture (about a minute)",
    )
    m.add_argument("--out", default="demo-out", help="folder to write (default demo-out)")
    m.add_argument(
        "--models",
        help="comma-separated (default avif,avif-pf,avif-si,heic,heic-pf,heic-si; any of "
        "`wz models`)",
    )
    m.add_argument(
        "--quality",
        type=float,
        help="the standard codecs' quality (default 20, a low rate); learned models 1..6",
    )
    m.set_defaults(func=cmd_demo)


def _add_eval(sub) -> None:
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


def _add_tables(sub) -> None:
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


def _add_report_pictures_bench(sub) -> None:
    rp = sub.add_parser(
        "report", help="(re)write a wz eval run's report.html, optionally with new image views"
    )
    rp.add_argument("run", help="a wz eval output folder")
    rp.add_argument("--title")
    rp.add_argument("--data", help="re-code a few of these pairs for the per-image views")
    rp.add_argument("--split", default="test")
    rp.add_argument("--every", type=int, default=1)
    rp.add_argument("--protocol", choices=["native", "paper"], default="native")
    rp.add_argument(
        "--model", help="the side model of the views (default: the run's first side model)"
    )
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
