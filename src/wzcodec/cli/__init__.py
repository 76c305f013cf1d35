"""``wz``: the command line, thin over the Python API. One module per group of commands, each
owning its parsers: ``coding`` (encode, decode, decode-seq, info, models), ``measuring``
(eval, bd-rate, report, bench, demo, ...), ``training`` (train, export); ``common`` holds the
rules that keep a user's files safe.

Errors a user can cause print one line to stderr and exit with status 2 (no traceback, and no
partial output file: outputs are written to a temporary file and renamed). Ctrl-C stops an
encode or decode at once, even inside a codec's C call (status 130), with nothing on disk.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import warnings

from wzcodec import __version__
from wzcodec.cli import coding, measuring, training
from wzcodec.cli.common import EXIT_USAGE, Parser, fail

__all__ = ["EXIT_USAGE", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="wz",
        description="Image compression with side information at the decoder "
        "(start with: wz encode x.png -o x.wz; wz decode x.wz --side y.png -o x_hat.png).",
    )
    p.add_argument("--version", action="version", version=f"wz {__version__}")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=Parser)
    coding.add_parsers(sub)
    measuring.add_parsers(sub)
    training.add_parsers(sub)
    return p


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Library warnings (a lossy input conversion, a rate target out of reach) as one line."""
    print(f"wz: warning: {message}", file=sys.stderr)


def _run_interruptible(func, args) -> int:
    """Run a coding command so that Ctrl-C ends it at once, even inside a codec's C call that
    holds the interpreter (x265 on 12 Mpx: ~20 s): while it computes, SIGINT has the system's
    default action (the process ends; the shell reports 130) and nothing is on disk yet, since
    outputs are written only once everything is coded; while they are written, Ctrl-C is a
    KeyboardInterrupt, so the temporary file is deleted, and ``main`` returns 130."""
    previous = signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        return func(args)
    finally:
        signal.signal(signal.SIGINT, previous)


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", category=FutureWarning)
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # every option, --help too, is speed.py's
        argv = ["bench", "--", *argv[1:]]
    parser = build_parser()
    if not argv:  # bare `wz`: what there is to do
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    if args.cmd is None:
        parser.print_help()
        return EXIT_USAGE
    from wzcodec.errors import WzError
    from wzcodec.memory import reuse_freed_memory

    reuse_freed_memory()  # large feature maps reused, not page-faulted afresh: see memory.py
    warnings.showwarning = _show_warning
    try:
        if getattr(args, "interruptible", False) and threading.current_thread() is (
            threading.main_thread()
        ):
            return _run_interruptible(args.func, args)
        return args.func(args)
    except WzError as e:
        return fail(str(e))
    except BrokenPipeError:  # `wz bd-rate ... | head`: the reader left; nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:  # unwritable output, full disk, permission denied ...
        where = f"{e.filename}: " if e.filename else ""
        return fail(f"{where}{e.strerror or e}")
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
