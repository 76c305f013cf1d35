"""What every ``wz`` command shares: one-line errors, where outputs go, and the rules that keep
a user's files safe (no input overwritten, no existing output replaced without ``-f``, nothing
half-written). Nothing here imports PyTorch, so refusals answer at once."""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from wzcodec.errors import WzError

EXIT_USAGE = 2
STDIO = "-"  # an input or output of "-": standard input / output


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints usage + message)
        print(f"wz: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def fail(message: str) -> int:
    print(f"wz: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def note(message: str) -> None:
    """A status or warning line: always stderr, so ``-o -`` keeps stdout for the data."""
    print(message, file=sys.stderr)


def positive_bpp(text: str) -> float:
    """argparse type of ``--bpp``: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text}")
    return value


def add_force(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-f",
        "--force",
        action="store_true",
        help="replace outputs that exist (default: refuse, and write nothing)",
    )


def check_readable(path: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise WzError(f"{p}: {'is a directory' if p.is_dir() else 'no such file'}")
    if not os.access(p, os.R_OK):
        raise WzError(f"{p}: not readable (permission denied)")
    return p


def check_writable(path: Path) -> None:
    """A file a measuring command will write (its folder must exist)."""
    if path.is_dir():
        raise WzError(f"{path}: is a directory")
    if not path.parent.exists():
        raise WzError(f"{path}: folder {path.parent} does not exist")


def read_input(path: str) -> bytes:
    """An input's bytes; ``-``: all of standard input."""
    if path == STDIO:
        return sys.stdin.buffer.read()
    return check_readable(path).read_bytes()


def _not_an_input(path: Path, inputs: list[str]) -> None:
    for i in inputs:
        if i != STDIO and path.exists() and os.path.samefile(path, i):
            raise WzError(f"{path}: is an input; refusing to overwrite it")


@dataclass
class Plan:
    """Where each input's output goes (``None``: standard output)."""

    outputs: list[Path | None]
    folder: Path | None  # made before writing (``-o dir/`` that does not exist yet)


def plan_outputs(
    inputs: list[str], output: str, suffix: str, suffixes: tuple[str, ...], force: bool
) -> Plan:
    """``output`` for one input, a folder of ``<stem><suffix>`` for any number (an existing
    folder, or a path ending in ``/``), or ``-`` for standard output. Refused, before any work:
    an output that is one of the inputs; an output that exists (unless ``force``); a file
    output whose suffix is not one of ``suffixes``; a folder that cannot be written."""
    if output == STDIO:
        if len(inputs) != 1:
            raise WzError(f"-o -: standard output takes one input, not {len(inputs)}")
        return Plan([None], None)
    out = Path(output)
    as_folder = output.endswith(("/", os.sep)) or out.is_dir()
    if not as_folder:
        _not_an_input(out, inputs)
        if len(inputs) > 1:
            raise WzError(
                f"{out}: {len(inputs)} inputs need a folder as output (an existing one, or a "
                "path ending in /)"
            )
        if out.suffix.lower() not in suffixes:
            raise WzError(
                f"{out}: unknown output type {out.suffix or '(no suffix)'!r}; "
                f"use one of {', '.join(suffixes)}"
            )
        paths = [out]
        parent = out.parent
    else:
        if STDIO in inputs:
            raise WzError(f"{out}: standard input has no name; give -o a file")
        paths = [out / (Path(i).stem + suffix) for i in inputs]
        parent = out
    for path in paths:
        _not_an_input(path, inputs)
    seen: dict[Path, str] = {}
    for i, path in zip(inputs, paths, strict=True):
        if path in seen:
            raise WzError(f"{seen[path]} and {i} would both be written to {path}")
        seen[path] = i
    if not force:
        for path in paths:
            if path.exists():
                raise WzError(f"{path}: exists; give -f to replace it")
    for path in paths:
        if path.is_dir():
            raise WzError(f"{path}: is a directory")
    folder = None
    if not parent.exists():
        if not as_folder:
            raise WzError(f"{out}: folder {parent} does not exist")
        base = next((p for p in parent.parents if p.exists()), Path("."))
        if not os.access(base, os.W_OK | os.X_OK):
            raise WzError(f"{out}: cannot create the folder here (permission denied)")
        folder = parent
    elif not os.access(parent, os.W_OK | os.X_OK):
        raise WzError(f"{parent}: folder not writable (permission denied)")
    return Plan(paths, folder)


def write_outputs(plan: Plan, blobs: list[bytes], messages: list[str]) -> None:
    """Write every output (atomically; standard output for ``None``), then its status line.
    Called once every input has been coded: a failure leaves no output at all."""
    import signal
    import threading

    from wzcodec.files import atomic_write_bytes

    if threading.current_thread() is threading.main_thread():  # Ctrl-C: remove the temp file
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if plan.folder is not None:
        plan.folder.mkdir(parents=True, exist_ok=True)
    for out, data, message in zip(plan.outputs, blobs, messages, strict=True):
        if out is None:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            atomic_write_bytes(out, data)
        if message:
            note(message)


def frames(inputs: list[str], suffixes: tuple[str, ...]) -> list[str]:
    """A list of files: the inputs given, or a folder's files of these suffixes (by name)."""
    if len(inputs) == 1 and Path(inputs[0]).is_dir():
        files = sorted(f for f in Path(inputs[0]).iterdir() if f.suffix.lower() in suffixes)
        if not files:
            raise WzError(f"{inputs[0]}: a directory with no {', '.join(suffixes)} files")
        return [str(f) for f in files]
    for i in inputs:
        if i != STDIO:
            check_readable(i)
    if inputs.count(STDIO) > 1:
        raise WzError("standard input (-) can be given once")
    return inputs
