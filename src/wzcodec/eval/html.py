"""``report.html``: one self-contained page of a ``wz eval`` run, to look at instead of CSV.

    run folder (summary.json, rd_*.png) ─┬─► RD plots (inline PNG)
                                         ├─► BD-rate table against any method (inline JSON + JS)
    runs of the same images, other --side ─► side-lies table (mean PSNR per side image given)
    a few pairs, re-coded at one rate ───► crops: original | base decode | refined | y,
                                           and a before/after slider

Nothing is fetched: images are data: URIs, the script is inline, so the file can be mailed,
archived or opened offline.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

import numpy as np

from wzcodec.eval.results import bd_table, fixed_method, read_rows
from wzcodec.eval.run import SIDE_MODES
from wzcodec.eval.tables import means
from wzcodec.files import atomic_write_bytes
from wzcodec.images import image_bytes
from wzcodec.metrics import psnr

CROP = (192, 320)  # the per-image views' crop (rows, columns)
CAPTIONS = ("original", "without y", "with y", "y")


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def _img(data: bytes, alt: str, cls: str = "") -> str:
    return f'<img class="{cls}" alt="{html.escape(alt)}" src="{_png_uri(data)}">'


def all_bd_tables(summary: dict) -> dict:
    """{metric: {group: {anchor: {method: BD-rate %}}}} for every method as the anchor."""
    out: dict = {}
    for metric in ("psnr", "ms_ssim_db"):
        for g, methods in summary.items():
            for anchor in methods:
                table = bd_table({g: methods}, anchor, metric).get(g, {})
                out.setdefault(metric, {}).setdefault(g, {})[anchor] = {
                    m: (None if not math.isfinite(v) else round(v, 2)) for m, v in table.items()
                }
    return out


def side_lies(runs: dict[str, Path]) -> list[dict]:
    """Rows {model, quality, bpp, <mode>: mean PSNR, <mode>_gain: mean gain over the base
    decode} of the side models in runs of the same images that gave the decoder another side
    image (``--side``), keyed by mode."""
    table: dict = {}
    for mode in (m for m in SIDE_MODES if m in runs):
        rows = [r for r in read_rows(runs[mode]) if not fixed_method(r["model"])]
        gains = means(rows, value=lambda r: r["psnr"] - r["psnr_base"])
        bpps = means(rows, value=lambda r: r["bpp"])
        for (m, q), p in means(rows).items():
            row = table.setdefault((m, q), {"model": m, "quality": q})
            row.update({mode: p, mode + "_gain": gains[(m, q)], "bpp": bpps[(m, q)]})
    return [table[k] for k in sorted(table)]


def find_side_runs(run: Path, own_mode: str) -> dict[str, Path]:
    """This run (its own ``--side`` mode) and runs of other modes beside it: sibling folders
    named for a mode, or holding a ``summary.json`` that records one, on the same images."""
    runs = {own_mode: run}
    own = {r["image"] for r in read_rows(run)}
    parent = run.resolve().parent
    for d in sorted(p for p in parent.iterdir() if p.is_dir() and p.resolve() != run.resolve()):
        if not (d / "per_image.csv").exists():
            continue
        mode = side_mode_of(d)
        if mode and mode not in runs and {r["image"] for r in read_rows(d)} == own:
            runs[mode] = d
    return runs


def side_mode_of(run: Path) -> str | None:
    """The side images an eval run gave its models (its summary says; else its folder name)."""
    try:
        mode = json.loads((run / "summary.json").read_text()).get("side")
    except (OSError, ValueError):
        mode = None
    return mode or (run.name if run.name in SIDE_MODES else None)


def make_views(pairs, models: list[str], quality_index: int = 2, count: int = 3) -> list[dict]:
    """Crops of up to ``count`` pairs, re-coded by the first side model among ``models`` at
    its sweep's ``quality_index``-th rate: the original, the decode without y (for a model
    over a standard codec, the base codec's own picture), the decode with y, and y; each
    crop where y helped most."""
    from wzcodec.catalog import CATALOG
    from wzcodec.eval.run import codec_for

    side_models = [m for m in models if not fixed_method(m) and m.split("=")[0] in CATALOG]
    side_models = [m for m in side_models if codec_for(m)[1].uses_side]
    if not side_models or not pairs:
        return []
    label, codec = codec_for(side_models[0])
    qs = codec.qualities
    q = qs[min(quality_index, len(qs) - 1)]
    views = []
    for i in np.linspace(0, len(pairs) - 1, min(count, len(pairs))).round().astype(int):
        name, x, y = pairs[int(i)]
        y = y[0] if isinstance(y, list) else y
        data = codec.encode(x, quality=q)
        base = codec.base_decode(data)
        base = codec.decode(data) if base is None else base  # an end-to-end model: no y
        refined = codec.decode(data, side=y)
        top, left = _best_crop(x, base, refined)
        h, w = min(CROP[0], x.shape[0]), min(CROP[1], x.shape[1])

        def cut(a: np.ndarray, top=top, left=left, h=h, w=w) -> bytes:
            return image_bytes(np.ascontiguousarray(a[top : top + h, left : left + w]))

        views.append(
            {
                "name": name,
                "model": label,
                "quality": q,
                "bpp": 8 * len(data) / (x.shape[0] * x.shape[1]),
                "psnr_base": psnr(x, base),
                "psnr": psnr(x, refined),
                "crops": {k: cut(a) for k, a in zip(CAPTIONS, (x, base, refined, y), strict=True)},
            }
        )
    return views


def _best_crop(x: np.ndarray, base: np.ndarray, refined: np.ndarray) -> tuple[int, int]:
    """The crop's corner where refining lowered the squared error most (a coarse search)."""
    gain = ((x.astype(np.float32) - base) ** 2 - (x.astype(np.float32) - refined) ** 2).sum(2)
    h, w = min(CROP[0], x.shape[0]), min(CROP[1], x.shape[1])
    best, corner = -np.inf, (0, 0)
    for top in range(0, x.shape[0] - h + 1, max(1, h // 4)):
        for left in range(0, x.shape[1] - w + 1, max(1, w // 4)):
            v = gain[top : top + h, left : left + w].sum()
            if v > best:
                best, corner = v, (top, left)
    return corner


def distinct_groups(summary: dict) -> list[str]:
    """The groups worth a plot: ``all``, and ``gray`` / ``color`` only where they differ from
    it (an eval of gray pairs alone has one distinct group)."""
    return ["all"] + [g for g in ("gray", "color") if g in summary and summary[g] != summary["all"]]


def rd_plots(summary: dict, title: str) -> dict[str, bytes]:
    """Plots of the page, each a full page wide: per distinct group the RD curves (PSNR), a
    zoom on the low rates (up to 0.3 bpp, log rate), MS-SSIM; and the PSNR gain of every
    receiver over its base decode (the same bytes)."""
    plots = {}
    for g in distinct_groups(summary):
        name = f"{title} [{g}]"
        plots[f"PSNR [{g}]"] = _rd_png(summary[g], "psnr", name, 1.2, False)
        plots[f"PSNR, low rates [{g}]"] = _rd_png(summary[g], "psnr", name, 0.3, True)
        plots[f"MS-SSIM [{g}]"] = _rd_png(summary[g], "ms_ssim_db", name, 1.2, False)
    gains = {
        m: pts for m, pts in summary["all"].items()
        if any(math.isfinite(p.get("psnr_base", math.nan)) for p in pts)
    }  # fmt: skip
    if gains:
        import tempfile

        from wzcodec.eval.tables import plot_gain

        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "gain.png"
            plot_gain(gains, path, f"{title}: gain over the base decode")
            plots["gain over the base decode"] = path.read_bytes()
    return plots


def _rd_png(points: dict, metric: str, title: str, xmax: float, logx: bool) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 5.5))
    tab20 = plt.get_cmap("tab20").colors
    colors = tab20[::2] + tab20[1::2]
    seen = []
    lo = 0.0
    if logx:  # from the lowest rate of a method coded alone (hevc-p's P-frames go far lower)
        alone = [p["bpp"] for m, pts in points.items() if not m.startswith("hevc") for p in pts]
        lo = max(0.9 * min(alone, default=0.02), 0.005)
    for i, (m, pts) in enumerate(sorted(points.items())):
        pts = [p for p in sorted(pts, key=lambda p: p["bpp"]) if math.isfinite(p[metric])]
        style = "--" if fixed_method(m) else "-"
        ax.plot([p["bpp"] for p in pts], [p[metric] for p in pts], style, marker="o", ms=3,
                label=m, color=colors[i % 20], lw=2.2 if m.endswith("-si") else 1.2)  # fmt: skip
        seen += [p[metric] for p in pts if lo <= p["bpp"] <= xmax]
    if logx:
        ax.set_xscale("log")
        ax.set_xlim(lo, xmax)
    else:
        ax.set_xlim(0, xmax)
    if seen:
        ax.set_ylim(min(seen) - 0.5, max(seen) + 0.5)
    ax.set_xlabel("bits per pixel (real file" + (", log scale)" if logx else ")"))
    ax.set_ylabel({"psnr": "PSNR (dB)", "ms_ssim_db": "MS-SSIM (dB)"}[metric])
    ax.set_title(title + (f", up to {xmax:g} bpp" if logx else ""))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9, ncol=2)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _lies_table(lies: list[dict]) -> list[str]:
    """The table of side images that lie (PSNR and gain over the base decode per mode)."""
    if not lies:
        return []
    e, out = html.escape, []
    modes = [m for m in SIDE_MODES if any(m in r for r in lies)]
    head = "".join(f"<th>{e(m)}</th>" for m in modes)
    out.append(
        "<h2>Side images that lie</h2><p>Mean PSNR (dB) when the decoder is given the "
        "true y, another pair's y, y shifted 32 px, y at half brightness, none, or x itself "
        "(oracle); in brackets the gain over the base decode.</p>"
        f"<table><tr><th>model</th><th>quality</th><th>bpp</th>{head}</tr>"
    )
    for r in lies:
        cells = "".join(
            f"<td>{r[m]:.2f} ({r[m + '_gain']:+.2f})</td>"
            if m in r and math.isfinite(r[m + "_gain"])
            else (f"<td>{r[m]:.2f}</td>" if m in r else "<td></td>")
            for m in modes
        )
        out.append(
            f"<tr><td>{e(r['model'])}</td><td>{r['quality']:g}</td>"
            f"<td>{r.get('bpp', math.nan):.3f}</td>{cells}</tr>"
        )
    out.append("</table>")
    return out


def _views(views: list[dict]) -> list[str]:
    """Per image: the crops, and a slider between the decodes without and with y."""
    e = html.escape
    out = ["<h2>Per image</h2>"] if views else []
    for k, v in enumerate(views):
        out.append(
            f"<h3>{e(v['name'])}: {e(v['model'])} at quality {v['quality']:g}, "
            f"{v['bpp']:.3f} bpp; PSNR {v['psnr_base']:.2f} dB without y, "
            f"{v['psnr']:.2f} dB with y</h3><div class='row'>"
        )
        for cap, data in v["crops"].items():
            out.append(f"<figure>{_img(data, cap)}<figcaption>{e(cap)}</figcaption></figure>")
        out.append(
            f"</div><div class='slider' id='s{k}'>"
            f"{_img(v['crops']['without y'], 'without y', 'under')}"
            f"{_img(v['crops']['with y'], 'with y', 'over')}"
            "<div class='seam'></div>"
            "<input type='range' min='0' max='100' value='50' aria-label='before / after'>"
            "</div><p class='note'>slide: without y (left) | with y (right)</p>"
        )
    return out


def render(
    title: str,
    summary: dict,
    anchor: str,
    plots: dict[str, bytes],
    lies: list[dict],
    views: list[dict],
) -> str:
    """The page's HTML (see the module docstring)."""
    e = html.escape
    bd = all_bd_tables(summary)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body data-ok='0'>",
        f"<h1>{e(title)}</h1>",
        "<p>Real files: bpp is the size of each coded file over the pixel count. "
        "BD-rate: the bits a method needs against the anchor at equal quality "
        "(negative: fewer).</p>",
        "<h2>Rate-distortion</h2><div class='plots'>",
        *(_img(v, k, "plot") for k, v in plots.items()),
        "</div><h2>BD-rate</h2><p>against <select id='anchor'></select> "
        "<select id='metric'><option value='psnr'>PSNR</option>"
        "<option value='ms_ssim_db'>MS-SSIM (dB)</option></select></p>",
        "<table id='bd'></table>",
    ]
    parts += _lies_table(lies)
    parts += _views(views)
    data = json.dumps({"bd": bd, "anchor": anchor})
    parts.append(f"<script>const REPORT = {data};\n{_JS}</script></body></html>")
    return "\n".join(parts)


def write_report(
    run: Path,
    title: str,
    side_mode: str = "true",
    views: list[dict] | None = None,
) -> Path:
    """Write ``run/report.html`` from the run's outputs (``wz eval`` calls this last). The
    per-image ``views`` are kept in ``run/views.json``: a later ``--merge`` run that codes no
    side model keeps the earlier ones."""
    meta = json.loads((run / "summary.json").read_text())
    kept = run / "views.json"
    if views:
        stored = [{**v, "crops": {k: base64.b64encode(c).decode() for k, c in v["crops"].items()}}
                  for v in views]  # fmt: skip
        atomic_write_bytes(kept, json.dumps(stored).encode())
    elif kept.exists():
        views = [{**v, "crops": {k: base64.b64decode(c) for k, c in v["crops"].items()}}
                 for v in json.loads(kept.read_text())]  # fmt: skip
    plots = rd_plots(meta["summary"], title)
    lies = side_lies(find_side_runs(run, side_mode))
    if not any(m in r for r in lies for m in SIDE_MODES if m != "true"):
        lies = []  # the true y alone is the RD table already
    page = render(title, meta["summary"], meta["bd_rate_vs"], plots, lies, views or [])
    atomic_write_bytes(run / "report.html", page.encode())
    return run / "report.html"


_CSS = """
body{font:15px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}
.plot{width:100%;max-width:1100px;display:block;margin:.5em 0}
.row{display:flex;gap:8px}.row figure{flex:1 1 0;min-width:0;margin:0}
.row img{width:100%}
figcaption{text-align:center;font-size:13px}.neg{color:#070}.pos{color:#a00}
.slider{position:relative;display:inline-block}.slider img{display:block}
.slider img{width:640px;image-rendering:pixelated}
.slider .over{position:absolute;top:0;left:0;clip-path:inset(0 0 0 50%)}
.slider .seam{position:absolute;top:0;bottom:0;left:50%;width:2px;margin-left:-1px;
background:#ffd400;box-shadow:0 0 3px #000;pointer-events:none}
.slider input{width:100%}.note{font-size:13px;color:#666}
"""

_JS = """
window.addEventListener('error', () => { document.body.dataset.errors = '1'; });
function bdTable() {
  const metric = document.getElementById('metric').value;
  const anchor = document.getElementById('anchor').value;
  const groups = Object.keys(REPORT.bd[metric] || {});
  const methods = [...new Set(groups.flatMap(g => Object.keys(REPORT.bd[metric][g])))].sort();
  let h = '<tr><th>method</th>' + groups.map(g => '<th>' + g + '</th>').join('') + '</tr>';
  for (const m of methods) {
    h += '<tr><td>' + m + '</td>';
    for (const g of groups) {
      const v = ((REPORT.bd[metric][g][anchor] || {})[m]);
      h += v == null ? '<td></td>' :
        '<td class="' + (v < 0 ? 'neg' : v > 0 ? 'pos' : '') + '">' +
        (v > 0 ? '+' : '') + v.toFixed(1) + '%</td>';
    }
    h += '</tr>';
  }
  document.getElementById('bd').innerHTML = h;
}
const sel = document.getElementById('anchor');
const all = REPORT.bd.psnr.all || Object.values(REPORT.bd.psnr)[0] || {};
for (const m of Object.keys(all).sort()) {
  const o = document.createElement('option'); o.value = o.textContent = m;
  if (m === REPORT.anchor) o.selected = true;
  sel.appendChild(o);
}
sel.onchange = document.getElementById('metric').onchange = bdTable;
bdTable();
for (const s of document.querySelectorAll('.slider')) {
  const over = s.querySelector('.over'), r = s.querySelector('input');
  const seam = s.querySelector('.seam');
  r.oninput = () => {
    over.style.clipPath = 'inset(0 0 0 ' + r.value + '%)';
    seam.style.left = r.value + '%';
  };
}
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const ok = imgs.every(i => i.complete && i.naturalWidth > 0);
  document.body.dataset.images = String(imgs.filter(i => i.naturalWidth > 0).length);
  document.body.dataset.ok = ok ? '1' : '0';
});
"""
