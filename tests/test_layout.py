"""The house rules of dmp/ (design.md §2), checked on the source so they cannot drift.

- who may import whom: each layer imports only the layers listed for it;
- the parse-time side (contracts/, orchestration/, dags/) imports no pyspark, Great Expectations or
  scikit-learn at module level, so Airflow can parse DAG files and ``dmp --help`` stays fast;
- one home per fact: a lake table path literal appears in ``dmp/contracts/tables.py`` only;
- size: no module over 600 lines, no function over 80 lines; ``jobs/*.py`` stay a few lines.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "dmp"

LAYERS: dict[str, set[str]] = {
    "contracts": set(),
    "spark": {"contracts"},
    "transforms": {"contracts", "spark"},
    "stats": {"contracts"},
    "delivery": {"contracts", "spark", "transforms"},
    "reports": {"contracts", "stats"},
    "steps": {"contracts", "spark", "transforms", "stats", "delivery", "reports"},
    "orchestration": {"contracts"},
    "demo": {"contracts"},
    "cli": {
        "contracts",
        "spark",
        "transforms",
        "stats",
        "delivery",
        "reports",
        "steps",
        "orchestration",
        "demo",
    },
}
HEAVY = ("pyspark", "delta", "great_expectations", "sklearn")
PARSE_TIME = ("contracts", "orchestration")
TABLE_LITERAL = re.compile(r"""["'](bronze|silver|gold|ops)/[a-z_]+["']""")
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
MAX_JOB_LINES = 15


def _sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (REPO / folder).rglob("*.py"))


def _layer(path: Path) -> str | None:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else None


def _imports(tree: ast.AST) -> list[tuple[str, bool]]:
    """(module, at module level) for every import; TYPE_CHECKING blocks are not imports at run time."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.extend((a.name, top) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                if child.module == "dmp":
                    found.extend((f"dmp.{a.name}", top) for a in child.names)
                else:
                    found.append((child.module, top))
            inner = top and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            visit(child, inner)

    visit(tree, True)
    return found


def test_every_module_sits_in_a_layer() -> None:
    loose = [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    assert loose == [], f"modules outside a layer folder: {loose}"
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} <= set(LAYERS)


@pytest.mark.parametrize("path", _sources("dmp"), ids=lambda p: str(p.relative_to(REPO)))
def test_layer_imports(path: Path) -> None:
    layer = _layer(path)
    if layer is None:
        return
    allowed = LAYERS[layer] | {layer}
    wrong = []
    for module, top in _imports(ast.parse(path.read_text(encoding="utf-8"))):
        parts = module.split(".")
        if parts[0] == "dmp" and len(parts) > 1 and parts[1] in LAYERS and parts[1] not in allowed:
            wrong.append(module)
        if layer in PARSE_TIME and top and parts[0] in HEAVY:
            wrong.append(f"{module} (heavy, at import time)")
    assert wrong == [], f"{layer}/ may import only {sorted(allowed)}; found {wrong}"


@pytest.mark.parametrize("path", _sources("dags"), ids=lambda p: str(p.relative_to(REPO)))
def test_dags_import_only_contracts_and_orchestration(path: Path) -> None:
    wrong = [
        m
        for m, top in _imports(ast.parse(path.read_text(encoding="utf-8")))
        if (m.startswith("dmp.") and m.split(".")[1] not in PARSE_TIME) or (top and m.split(".")[0] in HEAVY)
    ]
    assert wrong == []


def test_table_paths_have_one_home() -> None:
    home = PACKAGE / "contracts" / "tables.py"
    elsewhere = {
        str(p.relative_to(REPO)): sorted({m.group(0) for m in TABLE_LITERAL.finditer(p.read_text())})
        for p in [*_sources("dmp", "dags", "jobs", "bench"), *sorted(PACKAGE.rglob("*.json"))]
        if p != home and TABLE_LITERAL.search(p.read_text())
    }
    assert elsewhere == {}, "table paths are defined in dmp/contracts/tables.py; import them"


def test_no_module_or_function_is_too_long() -> None:
    long_modules, long_functions = [], []
    for path in _sources("dmp", "dags", "jobs"):
        text = path.read_text(encoding="utf-8")
        if (n := len(text.splitlines())) > MAX_MODULE_LINES:
            long_modules.append(f"{path.relative_to(REPO)} ({n})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long_functions.append(f"{path.relative_to(REPO)}:{node.name} ({n})")
    assert long_modules == [] and long_functions == []


def test_jobs_are_thin() -> None:
    fat = {p.name: n for p in _sources("jobs") if (n := len(p.read_text().splitlines())) > MAX_JOB_LINES}
    assert fat == {}, f"jobs/*.py run the CLI command of the same name in a few lines: {fat}"
