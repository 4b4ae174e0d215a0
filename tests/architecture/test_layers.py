"""The domain imports only the standard library and itself."""

import ast
import sys
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[2] / "src" / "itb" / "domain"


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_domain_imports_only_stdlib_and_itb() -> None:
    files = sorted(DOMAIN.rglob("*.py"))
    assert files, "the domain package has modules"
    offenders = {
        f"{path.relative_to(DOMAIN)}: {root}"
        for path in files
        for root in _imported_roots(path)
        if root != "itb" and root not in sys.stdlib_module_names
    }
    assert not offenders, offenders


def test_domain_does_not_read_the_clock_or_draw_random_numbers() -> None:
    forbidden = {"random", "time", "secrets", "uuid", "os", "pathlib", "io", "socket"}
    hits = {
        f"{path.relative_to(DOMAIN)}: {root}"
        for path in sorted(DOMAIN.rglob("*.py"))
        for root in _imported_roots(path)
        if root in forbidden
    }
    assert not hits, hits
