"""No module imports another module's private names (a name starting with an underscore).

A private helper used from elsewhere is an API nobody pinned: make it public in its home
(and pin it) or move the code there.
"""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "itb"


def test_no_module_imports_another_modules_private_names() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("itb"):
                private = [
                    a.name
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
                if private:
                    offenders.append(f"{path.relative_to(SRC)}: {node.module} {private}")
    assert offenders == [], offenders


def test_the_check_sees_a_private_import() -> None:
    tree = ast.parse("from itb.services.pump_run import _apply\n")
    node = tree.body[0]
    assert isinstance(node, ast.ImportFrom)
    assert [a.name for a in node.names if a.name.startswith("_")] == ["_apply"]
