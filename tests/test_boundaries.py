"""The two wings and their contract: who may import whom, checked statically.

The reading side (`events/`, `analysis/`, `cli/`, `tensorboard/`, `tags.py`,
`schema.py`) never imports TensorFlow, Keras, `bnscope.recording` or
`bnscope.layers`, and `analysis/` and `tensorboard/` never import rich. Every import counts, including imports inside
functions, and no two modules of the package import each other, directly or
through others.
"""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bnscope"
TF_FREE = (
    "events",
    "analysis",
    "cli",
    "tensorboard",
    "tags.py",
    "schema.py",
    "_version.py",
)
NEEDS_TF = ("tensorflow", "keras", "bnscope.recording", "bnscope.layers")
# Names `bnscope/__init__.py` resolves lazily from the recording wing.
RECORDING_NAMES = {"BNScope", "Observer"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            for alias in node.names:
                found.add(f"{node.module}.{alias.name}")
    return found


def modules(*roots: str) -> list[Path]:
    paths: list[Path] = []
    for root in roots:
        target = PACKAGE / root
        paths += sorted(target.rglob("*.py")) if target.is_dir() else [target]
    return paths


def forbidden(path: Path, prefixes: tuple[str, ...]) -> list[str]:
    bad = []
    for name in sorted(imports(path)):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            bad.append(name)
        if name in {f"bnscope.{n}" for n in RECORDING_NAMES}:
            bad.append(name)
    return bad


@pytest.mark.parametrize("path", modules(*TF_FREE), ids=module_name)
def test_reading_side_never_imports_tensorflow(path):
    assert forbidden(path, NEEDS_TF) == []


@pytest.mark.parametrize("path", modules("analysis", "tensorboard"), ids=module_name)
def test_analysis_and_the_tensorboard_plugin_never_import_rich(path):
    assert forbidden(path, ("rich",)) == []


def test_the_check_catches_a_tensorflow_import(tmp_path):
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text(
        "def f():\n    import tensorflow as tf\n    from keras import ops\n"
    )
    assert forbidden(sneaky, NEEDS_TF) == ["keras", "keras.ops", "tensorflow"]
    from_package = tmp_path / "lazy.py"
    from_package.write_text("from bnscope import BNScope\n")
    assert forbidden(from_package, NEEDS_TF) == ["bnscope.BNScope"]


@functools.cache
def internal_graph() -> dict[str, set[str]]:
    names = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in names.items():
        targets = set()
        for imported in imports(path):
            # `from bnscope.x import y` names module `bnscope.x.y` or attribute y.
            while imported and imported not in names:
                imported = imported.rpartition(".")[0]
            if imported and imported != name and imported != "bnscope":
                targets.add(imported)
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            # A package's own __init__ re-exporting its submodules is not a cycle.
            if node.startswith(target + "."):
                continue
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


# Which parts of the package each part may import: the contract at the bottom,
# event files above it, then the two wings; the CLI and the demo on top.
ALLOWED = {
    "bnscope._version": set(),
    "bnscope.tags": set(),
    "bnscope.schema": set(),
    "bnscope.events": {"bnscope.tags", "bnscope.schema"},
    "bnscope.analysis": {"bnscope.tags", "bnscope.schema", "bnscope.events"},
    "bnscope.layers": set(),
    "bnscope.recording": {
        "bnscope._version",
        "bnscope.tags",
        "bnscope.schema",
        "bnscope.events",
        "bnscope.analysis",
    },
    "bnscope.demo": {"bnscope.recording"},
    # The TensorBoard plugin runs in TensorBoard's process: TF-free, rich-free.
    "bnscope.tensorboard": {
        "bnscope.tags",
        "bnscope.schema",
        "bnscope.events",
        "bnscope.analysis",
    },
    "bnscope.cli": {
        "bnscope._version",
        "bnscope.tags",
        "bnscope.schema",
        "bnscope.events",
        "bnscope.analysis",
        "bnscope.demo",
    },
}


def part_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


@pytest.mark.parametrize("module", sorted(internal_graph()))
def test_each_part_imports_only_what_lies_below_it(module):
    part = part_of(module)
    if part in ("bnscope", "bnscope.__main__"):
        return  # the package's lazy re-exports and `python -m bnscope`
    reached = {part_of(target) for target in internal_graph()[module]} - {part}
    assert reached <= ALLOWED[part], f"{module} imports {reached - ALLOWED[part]}"


def test_no_import_cycles():
    assert find_cycle(internal_graph()) is None


def test_the_cycle_check_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_reading_side_imports_without_tensorflow():
    code = (
        "import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None\n"
        "import bnscope, bnscope.analysis, bnscope.cli, bnscope.events, "
        "bnscope.schema, bnscope.tags\n"
        "from bnscope.cli import compare_view, demo_view, report\n"
        "from bnscope.analysis import api, compare, jsonv1, summary\n"
        "from bnscope.tensorboard import adapter, payload, plugin\n"
        "bnscope.load\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
