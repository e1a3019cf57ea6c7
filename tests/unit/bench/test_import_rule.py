"""bench/ never imports the product (docs/ARCHITECTURE.md, "Parts and who may import whom")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench"
PRODUCT = ("image_factory", "dags", "plugins")


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(BENCH.glob("*.py")), ids=lambda p: p.name)
def test_bench_module_imports_no_product_code(path: Path) -> None:
    assert not {name for name in _imported(path) if name.split(".")[0] in PRODUCT}
