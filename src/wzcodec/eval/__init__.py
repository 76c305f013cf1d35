"""The measuring harness, apart from the library: every method measured through ``Codec``.

run.py        wz eval: every method x rate point x pair, real files (``evaluate``)
results.py    eval runs as data: rows, summaries, the best classical codec, BD-rate tables
outputs.py    what wz eval writes: plots, per_image.csv, summary.json, bd_rate.csv
tables.py     wz bd-rate, side-gaps, equal-bpp, plot: tables and plots from eval runs
html.py       wz report: report.html of an eval run
sequence.py   wz eval-seq: a sequence decoded fed forward, against its base decode
interview.py  hevc-p / hevc-i: x265 coding x after y (the encoder that sees y)
bench.py      wz bench: speed and memory, each in a fresh process
pictures.py   wz visualize: attention maps
demo.py       wz demo
"""
