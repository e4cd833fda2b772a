"""docs/reliability.md stays true: every test it names exists, and every R number the repository cites has an
entry there. Also: no text points at notes outside the repository (a reader of the repository cannot open them)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "reliability.md"
CITING = ("README.md", "edgegen", "tests", "bench", "docs", "deploy")
TEXT_SUFFIXES = {".py", ".pyi", ".md", ".toml", ".service", ".json", ".txt"}
TEST_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
R_NUMBER = re.compile(r"\bR(\d{1,2})\b")


def _texts() -> list[Path]:
    return sorted(
        path
        for root in CITING
        for path in ((REPO / root).rglob("*") if (REPO / root).is_dir() else [REPO / root])
        if path.suffix in TEXT_SUFFIXES and path.is_file() and path not in (DOC, Path(__file__))
    )


def _functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_every_test_the_matrix_names_exists() -> None:
    references = TEST_REFERENCE.findall(DOC.read_text())
    assert len(references) >= 60  # the parser still finds the references
    missing = [f"{file}::{name}" for file, name in references if name not in _functions(REPO / file)]
    assert missing == [], "docs/reliability.md names tests that do not exist"


def test_every_cited_r_number_has_an_entry() -> None:
    entries = {int(n) for n in re.findall(r"^### R(\d+):", DOC.read_text(), re.MULTILINE)}
    cited: dict[int, list[str]] = {}
    for path in _texts():
        for number in R_NUMBER.findall(path.read_text(errors="replace")):
            cited.setdefault(int(number), []).append(str(path.relative_to(REPO)))
    assert {n: where for n, where in cited.items() if n not in entries} == {}
    assert set(cited) >= {1, 5, 7, 12, 13}  # the scan still finds the citations


@pytest.mark.parametrize("outside", ["RELIABILITY.md", "ANCHORS.md", "DESIGN.md"])
def test_nothing_points_at_notes_outside_the_repository(outside: str) -> None:
    assert [str(p.relative_to(REPO)) for p in _texts() if outside in p.read_text(errors="replace")] == []
