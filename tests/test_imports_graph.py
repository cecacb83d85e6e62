"""No import cycles inside kgllm, counting imports inside functions too (only ``TYPE_CHECKING``
blocks are left out): a cycle hidden in a function is still two modules that cannot be read alone."""

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1] / "kgllm"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST, here: str, is_package: bool) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []  # typing-only imports
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = here.split(".") if is_package else here.split(".")[:-1]
                pkg = pkg[: len(pkg) - node.level + 1]
                base = ".".join(pkg + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m.startswith("kgllm")}


def test_no_import_cycles():
    modules = {_module(p): p for p in ROOT.rglob("*.py")}
    graph = nx.DiGraph()
    for name, path in modules.items():
        for target in _imports(ast.parse(path.read_text()), name, path.name == "__init__.py"):
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]  # an imported name, not a module
            if target in modules and target != name and not name.startswith(target + "."):
                graph.add_edge(name, target)  # (a module importing its own package is not a cycle)
    cycles = list(nx.simple_cycles(graph))
    assert not cycles, cycles[:5]


def test_the_package_exports_its_main_objects_lazily():
    """``from kgllm import X`` works for every name in ``kgllm.__all__``, each is the object its module
    defines, and ``import kgllm`` alone loads neither torch nor any of them."""
    import importlib
    import subprocess
    import sys

    import kgllm

    for name in kgllm.__all__:
        assert getattr(kgllm, name) is getattr(importlib.import_module(kgllm._EXPORTS[name]), name)
    code = "import sys, kgllm; print('torch' in sys.modules, 'kgllm.kg.store' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        kgllm.nothing  # noqa: B018
