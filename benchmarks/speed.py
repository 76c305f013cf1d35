"""Speed and memory benchmark: `python benchmarks/speed.py [--models ...] [--sizes ...]`.

The same as `wz bench`; see `wzcodec.eval.bench` for what is measured and how.
"""

from wzcodec.eval.bench import main

if __name__ == "__main__":
    raise SystemExit(main())
