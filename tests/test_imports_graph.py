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
    code = "import sys, kgllm; print('torch' in sys.modules, 'kgllm.kg.graph.store' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        kgllm.nothing  # noqa: B018


LAYERS = ["util", "kg", "linking", "nn", "tasks", "data", "lit", "workflows", "cli"]
KG_ROOMS = ["graph", "extraction", "sources", "sparql", "quality"]


def _edges():
    modules = {_module(p): p for p in ROOT.rglob("*.py")}
    for name, path in modules.items():
        for target in _imports(ast.parse(path.read_text()), name, path.name == "__init__.py"):
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in modules and target != name and not name.startswith(target + "."):
                yield name, target


def _rank(module: str, order: list[str], depth: int) -> int | None:
    parts = module.split(".")
    return order.index(parts[depth]) if len(parts) > depth and parts[depth] in order else None


def test_no_arrow_runs_up():
    """Layers ``util -> kg -> linking -> nn -> tasks -> data -> lit -> workflows -> cli`` and the
    rooms of ``kgllm.kg`` (``graph -> extraction -> sources -> sparql -> quality``): a module imports
    only from its own layer or room and the ones before it (function-level imports included)."""
    up = []
    for a, b in _edges():
        if a in ("kgllm", "kgllm.__main__"):
            continue  # the package's lazy exports and ``python -m kgllm``
        la, lb = _rank(a, LAYERS, 1), _rank(b, LAYERS, 1)
        assert la is not None and lb is not None, f"{a} -> {b}: a module outside the layers"
        if lb > la:
            up.append(f"{a} -> {b}")
        if la == lb == LAYERS.index("kg"):
            ra, rb = _rank(a, KG_ROOMS, 2), _rank(b, KG_ROOMS, 2)
            if ra is not None and rb is not None and rb > ra:
                up.append(f"{a} -> {b}")
    assert not up, up


def test_nothing_loose_and_no_room_too_large():
    """Every module sits in a layer (no loose modules beside ``kgllm/__init__``), every package says
    what it holds, and no package's own files hold more than about 15% of the package's lines."""
    loose = sorted(p.name for p in ROOT.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert loose == []
    lines = {p: len(p.read_text().splitlines()) for p in ROOT.rglob("*.py")}
    total = sum(lines.values())
    for init in ROOT.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc) > 40, f"{init.parent}: a package without a docstring saying what it holds"
        own = sum(n for p, n in lines.items() if p.parent == init.parent)
        assert own <= 0.16 * total, f"{init.parent}: {own} of {total} lines"


def test_class_paths_written_before_the_move_still_resolve():
    """A checkpoint names its classes by path (``hyper_parameters._class_path``,
    ``datamodule_hyper_parameters._class_path``) and a run's ``config.yaml`` names its callbacks:
    the paths checkpoints and configs carried before ``kg/`` was split into rooms (and the loose
    modules homed) resolve to the classes kgllm loads today, as do those the runner allows."""
    import importlib

    from kgllm.lit.runner import _allowed_modules

    before = ["kgllm.lit.MLMModule", "kgllm.lit.ClassifierModule", "kgllm.lit.DocREModule",
              "kgllm.lit.LinkPredModule", "kgllm.data.KGDataModule", "kgllm.data.LinkPredDataModule",
              "kgllm.lit.runtime.KGCheckpoint", "kgllm.lit.runtime.KGModelSummary"]
    for path in before:
        module, name = path.rsplit(".", 1)
        assert isinstance(getattr(importlib.import_module(module), name), type), path
    assert {p for p in before if p.startswith("kgllm.lit.") and p.count(".") == 2} <= _allowed_modules(None)


def test_public_functions_and_classes_have_docstrings():
    """Every module-level public function and class of kgllm says what it is (command entry points,
    ``main`` and ``*_main``, are documented by their ``--help``)."""
    missing = []
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if (isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")
                    and node.name != "main" and not node.name.endswith("_main") and not ast.get_docstring(node)):
                missing.append(f"{path.relative_to(ROOT.parent)}:{node.lineno} {node.name}")
    assert not missing, missing
