"""The layering rule of docs/design.md ("Layers"), checked by reading every import.

Front ends (``signal``, ``nn``, ``dask``) build problems and call the ``engine``; the engine
uses the ``runtime``; ``cli`` sits on top; backends see the engine only through
``convcore.plugin``. Imports inside function bodies count: a cycle hidden in a function is
still a cycle.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# layer -> the layers it may import (besides itself and the native declarations, convcore._cy)
ALLOWED = {
    "runtime": set(),
    "engine": {"runtime"},
    "plugin": {"engine", "runtime"},
    "signal": {"engine", "runtime"},
    "nn": {"engine", "runtime"},
    "dask": {"signal", "engine", "runtime"},   # the same functions, per block
    "cli": {"signal", "nn", "dask", "engine", "runtime", "plugin", "root", "backends"},
    "backends": {"plugin"},
}


def _module_name(path):
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] == "backends":
        parts = ["convcore"] + parts
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources():
    for folder in ("convcore", "backends"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in (".py", ".pyx", ".pxi") and "__pycache__" not in path.parts:
                yield path


def _imports(path):
    """Every convcore module a file imports, anywhere in it (Cython: its Python imports)."""
    name = _module_name(path)
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    text = path.read_text()
    if path.suffix != ".py":
        # Cython: parse the plain Python import lines one by one (cimports are declarations)
        kept = []
        for line in text.splitlines():
            line = line.strip()
            if line.startswith(("import ", "from ")) and "cimport" not in line:
                try:
                    ast.parse(line)
                    kept.append(line)
                except SyntaxError:  # prose in a docstring that starts with "from "
                    pass
        text = "\n".join(kept)
    found = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import module` imports the module (and pkg, which is its parent and
            # already importing: not an edge); `from module import name` imports module
            submodules = {f"{base}.{alias.name}" for alias in node.names}
            real = {m for m in submodules if _existing(m)}
            found.update(real)
            if len(real) < len(submodules):
                found.add(base)
    return {m for m in found if m == "convcore" or m.startswith("convcore.")}


def _existing(module):
    """The module a dotted name refers to, if it is a file of the tree (else None)."""
    parts = module.split(".")[1:]
    if parts[:1] == ["backends"]:
        base = ROOT / "backends" / pathlib.Path(*parts[1:]) if parts[1:] else ROOT / "backends"
    else:
        base = ROOT / "convcore" / pathlib.Path(*parts) if parts else ROOT / "convcore"
    for candidate in (base.with_suffix(".py"), base.with_suffix(".pyx"), base / "__init__.py"):
        if candidate.exists():
            return module
    return None


def _layer(module):
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return "root"
    if parts[1] == "_cy":
        return "native"
    if parts[1] == "benchmarks":
        return "cli"
    return parts[1]


GRAPH = {_module_name(p): {m for m in _imports(p) if _existing(m)} for p in _sources()}


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_follow_the_layers(module):
    layer = _layer(module)
    if layer in ("root", "native"):
        return
    allowed = ALLOWED[layer] | {layer, "native"}
    wrong = sorted(m for m in GRAPH[module] if _layer(m) not in allowed
                   and not (layer == "backends" and m.startswith(module.rsplit(".", 1)[0])))
    assert not wrong, f"{module} ({layer}) imports {wrong}: docs/design.md, 'Layers'"


def test_backends_import_the_engine_only_through_the_plugin_module():
    for module, imported in GRAPH.items():
        if _layer(module) == "backends":
            engine = sorted(m for m in imported if _layer(m) not in ("backends", "native"))
            assert set(engine) <= {"convcore.plugin"}, (module, engine)


def test_no_import_cycles():
    """Depth-first search over the import graph (package roots excluded: ``convcore``'s
    own __init__ re-exports everything and is imported by nobody inside)."""
    graph = {m: {d for d in deps if d != "convcore" and d != m and d in GRAPH}
             for m, deps in GRAPH.items() if m != "convcore"}
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_rule_sees_imports():
    """The reader finds the imports it must: a check that sees nothing cannot fail."""
    assert "convcore.engine.dispatch" in GRAPH["convcore.engine.calls"]
    assert "convcore.plugin" in GRAPH["convcore.backends.openmp"]
    assert "convcore.runtime.threads" in GRAPH["convcore.engine.context"]


def test_every_package_folder_is_installed():
    """A folder missing from pyproject's package list is left out of a real (non-editable)
    install: its imports work in this checkout and fail for users."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    folders = {_module_name(init) for folder in ("convcore", "backends")
               for init in (ROOT / folder).rglob("__init__.py")}
    assert folders - listed == set()
