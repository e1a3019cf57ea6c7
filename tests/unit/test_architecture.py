"""The contracts of docs/ARCHITECTURE.md, checked against the code: who may import whom, and how big a piece is."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

DOC = ROOT / "docs" / "ARCHITECTURE.md"


def _documented_rules() -> dict[str, frozenset[str]]:
    """Read "Parts and who may import whom": part path → the top-level packages it must never import."""
    text = DOC.read_text(encoding="utf-8")
    table = text.split("## Parts and who may import whom", 1)[1].split("\n\n", 2)[1]
    rules: dict[str, frozenset[str]] = {}
    for row in table.splitlines()[2:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        never = frozenset(re.findall(r"`([^`]+)`", cells[3]))
        for path in re.findall(r"`([^`]+)`", cells[1]):
            if never:
                rules[path.rstrip("/")] = never
    return rules


#: part → top-level packages it must never import (docs/ARCHITECTURE.md, "Parts and who may import whom").
FORBIDDEN_IMPORTS = _documented_rules()
#: The product's size limits: a module a reader can hold in mind, a function that fits a screen.
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
PRODUCT = ("plugins/image_factory", "dags")


def _sources(part: str) -> Iterator[Path]:
    yield from sorted((ROOT / part).rglob("*.py"))


def _imported_packages(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


@pytest.mark.parametrize("part", sorted(FORBIDDEN_IMPORTS))
def test_each_part_imports_only_what_it_may(part: str) -> None:
    forbidden = FORBIDDEN_IMPORTS[part]
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {package}"
        for path in _sources(part)
        for line, package in _imported_packages(path)
        if package in forbidden
    ]
    assert found == []


def test_every_part_of_the_code_has_a_documented_rule() -> None:
    assert set(FORBIDDEN_IMPORTS) == {"plugins/image_factory", "dags", "emulator", "stack", "bench"}
    assert FORBIDDEN_IMPORTS["emulator"] >= {"image_factory", "dags", "plugins"}
    assert FORBIDDEN_IMPORTS["plugins/image_factory"] >= {"emulator"}


def test_no_product_module_is_too_long() -> None:
    long = [
        f"{path.relative_to(ROOT)}: {lines} lines"
        for part in PRODUCT
        for path in _sources(part)
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert long == [], f"split these by concern (at most {MAX_MODULE_LINES} lines)"


def test_no_product_function_is_too_long() -> None:
    long = []
    for part in PRODUCT:
        for path in _sources(part):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno:
                    lines = node.end_lineno - node.lineno + 1
                    if lines > MAX_FUNCTION_LINES:
                        long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {lines} lines")
    assert long == [], f"split these (at most {MAX_FUNCTION_LINES} lines)"
