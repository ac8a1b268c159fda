"""The house rules, checked: no import cycles, small modules, each with its docstring."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "cmalign"
MAX_LINES = 300


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Package modules imported anywhere in ``path`` (function bodies included)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            root = f"{base}.{node.module}" if node.level else node.module
            root = root if node.module else base
            # "from . import x" imports module x when it is one
            targets = [root] + [f"{root}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            # importing a.b.c runs a.b's __init__ too, unless a.b is a package this
            # module lives in (already being imported) or the root package (which
            # imports everything by design)
            while target and target != "cmalign":
                if target in modules and not name.startswith(target + "."):
                    found.add(target)
                target = target.rpartition(".")[0]
    found.discard(name)
    return found


def _graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    return {
        _module_name(p): _imports(p, modules)
        for p in paths
        if p != PACKAGE / "__init__.py"
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_has_no_cycle():
    graph = _graph()
    assert graph["cmalign.embed"] >= {"cmalign.cache", "cmalign.features"}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {**_graph(), "cmalign.cache": {"cmalign.embed"}}
    assert _cycle(graph) is not None


def test_modules_are_small_and_say_what_they_are():
    # split by idea, not by line count: a module of one idea may pass the limit
    # when its docstring says why ("passes 300 lines because ...")
    for path in PACKAGE.rglob("*.py"):
        lines = path.read_text().count("\n")
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and len(doc) > 40, f"{path} has no module docstring"
        if lines > MAX_LINES:
            assert f"passes {MAX_LINES} lines because" in " ".join(doc.split()), (
                f"{path.name}: {lines} lines and its docstring does not say why"
            )


def test_every_module_of_the_package_imports():
    import importlib

    for path in sorted(PACKAGE.rglob("*.py")):
        name = _module_name(path)
        if name.endswith("__main__"):
            continue  # runs its command on import; test_commands runs it
        importlib.import_module(name)


def test_the_top_level_imports_no_course_material():
    import subprocess
    import sys

    code = (
        "import sys, cmalign; cmalign.load_clip, cmalign.clip_loss, cmalign.fit, "
        "cmalign.search, cmalign.retrieval_metrics, cmalign.save_clip; "
        "print(sorted(m for m in sys.modules if m.startswith('cmalign.course')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_benchmark_is_outside_the_package():
    assert not (PACKAGE / "bench.py").exists()
    assert (PACKAGE.parent / "benchmarks" / "run.py").exists()
