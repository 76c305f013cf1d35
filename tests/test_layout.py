"""The code keeps the shape docs/layout.md draws: small files, short functions (model
definitions aside), and the harness apart from the library."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "wzcodec"
MAX_FILE_LINES = 460
MAX_FUNCTION_LINES = 60


def _sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_no_source_file_is_longer_than_a_few_screens():
    long = {
        str(p.relative_to(SRC)): n
        for p in _sources()
        if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES
    }
    assert not long, long


def test_no_function_outside_the_model_definitions_is_longer_than_one_screen():
    long = []
    for p in _sources():
        if p.parent.name == "models":
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{p.relative_to(SRC)}:{node.name} ({n} lines)")
    assert not long, long


def test_the_library_root_holds_no_harness_module():
    harness = {"evaluate", "report", "reports", "bench", "visualize", "demo", "interview"}
    assert not harness & {p.stem for p in SRC.glob("*.py")}
