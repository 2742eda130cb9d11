"""Which module may import which third-party package: the layering in one table.

Paths are under ``r1release/``; one ending in ``/`` is a package (every module under it).
"anywhere" counts imports at any depth (inside functions, ``if TYPE_CHECKING:``, ...);
"top level" counts only the imports that run when the module is imported, which is what
makes ``r1release --help`` and a plain ``r1release check`` slow. A package not named here is
not restricted.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "r1release"

# package           may be imported (anywhere) by                         at top level by
LAYERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "huggingface_hub": (("hub.py",), ()),
    "click": (("cli.py", "cli/"), ("cli.py", "cli/")),
    "torch": (("adapters.py", "architecture.py", "smoke.py", "training.py"), ("training.py",)),
    "accelerate": (("training.py",), ("training.py",)),
    "transformers": (
        ("adapters.py", "architecture.py", "rules/smoke_generate.py", "smoke.py", "training.py"),
        ("training.py",),
    ),
    "peft": (("adapters.py", "training.py"), ()),
}
# transformers' tokenizer pieces (no model code): the tokenizer view loads the tokenizer.
TOKENIZER_PIECES = frozenset({"transformers.PreTrainedTokenizerFast", "transformers.utils.logging"})
TOKENIZER_USERS = ("tokenizer_view.py",)
# `import r1release` (the lazy public API) loads none of these.
NOT_ON_IMPORT = ("torch", "transformers", "accelerate", "huggingface_hub", "click", "peft")


def imports(path: str, source: str) -> Iterator[tuple[str, int, bool]]:
    """(imported name, line, at top level) for every import in a module: ``import a.b`` is
    ``a.b``; ``from a import b`` is ``a.b``; relative imports are resolved against ``path``;
    ``importlib.import_module("x")`` and ``__import__("x")`` with a literal name count too."""
    tree = ast.parse(source, path)
    package = ["r1release", *Path(path).parent.parts]
    top = {id(node) for node in _top_level(tree.body)}
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names = [f"{module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Call) and _dynamic_import(node):
            names = [node.args[0].value]  # type: ignore[attr-defined]
        for name in names:
            yield name, node.lineno, id(node) in top


def _top_level(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """What runs at import: the module body, class bodies and the blocks of its if/try/with
    (not ``if TYPE_CHECKING:``), but not function bodies."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, ast.If):
            if not (isinstance(stmt.test, ast.Name) and stmt.test.id == "TYPE_CHECKING"):
                yield from _top_level(stmt.body)
            yield from _top_level(stmt.orelse)
        elif isinstance(stmt, (ast.Try, ast.With)):
            for block in ("body", "orelse", "finalbody"):
                yield from _top_level(getattr(stmt, block, []))
            for handler in getattr(stmt, "handlers", []):
                yield from _top_level(handler.body)
        elif isinstance(stmt, ast.ClassDef):
            yield from _top_level(stmt.body)
        elif isinstance(stmt, (ast.Expr, ast.Assign)):
            yield from (n for n in ast.walk(stmt) if isinstance(n, ast.Call))


def _dynamic_import(node: ast.Call) -> bool:
    func = node.func
    named = (isinstance(func, ast.Name) and func.id == "__import__") or (
        isinstance(func, ast.Attribute) and func.attr == "import_module"
    )
    return (
        named
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


def _allowed(path: str, owners: tuple[str, ...]) -> bool:
    return any(path == o or (o.endswith("/") and path.startswith(o)) for o in owners)


def violations(sources: Mapping[str, str]) -> list[str]:
    """Every import in ``sources`` (path under r1release/ -> text) that the table forbids."""
    found = []
    for path, source in sorted(sources.items()):
        for name, line, at_top in imports(path, source):
            root = name.split(".")[0]
            if root not in LAYERS:
                continue
            anywhere, top_level = LAYERS[root]
            tokenizer = _allowed(path, TOKENIZER_USERS) and name in TOKENIZER_PIECES
            if not (_allowed(path, anywhere) or tokenizer):
                found.append(f"r1release/{path}:{line}: imports {name}")
            elif at_top and not _allowed(path, top_level):
                found.append(f"r1release/{path}:{line}: imports {name} at module top level")
    return found


def _sources() -> dict[str, str]:
    return {
        p.relative_to(PACKAGE).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(PACKAGE.rglob("*.py"))
    }


def test_every_module_keeps_to_its_layer():
    sources = _sources()
    assert "hub.py" in sources and "architecture.py" in sources
    assert violations(sources) == []


@pytest.mark.parametrize(
    ("path", "added", "expected"),
    [
        ("card.py", "import huggingface_hub\n", "imports huggingface_hub"),
        ("card.py", "def f():\n    from huggingface_hub import ModelCard\n", "ModelCard"),
        ("checker.py", "def f():\n    import huggingface_hub.errors\n", "huggingface_hub"),
        ("rules/tokenizer.py", "def f():\n    import click\n", "imports click"),
        (
            "card.py",
            "def f():\n    import importlib\n    importlib.import_module('torch')\n",
            "torch",
        ),
        ("architecture.py", "import torch\n", "torch at module top level"),
        ("rules/expected_tensors.py", "def f():\n    import torch\n", "imports torch"),
        (
            "rules/expected_tensors.py",
            "def f():\n    from transformers import CONFIG_MAPPING\n",
            "CONFIG_MAPPING",
        ),
        ("rules/tokenizer.py", "try:\n    import torch\nexcept ImportError:\n    pass\n", "torch"),
        ("tokenizer_view.py", "def f():\n    from transformers import AutoModel\n", "AutoModel"),
        (
            "checkpoint.py",
            "def f():\n    from transformers import PreTrainedTokenizerFast\n",
            "PreTrainedTokenizerFast",
        ),
        ("hub.py", "from huggingface_hub import HfApi\n", "HfApi at module top level"),
    ],
)
def test_the_table_catches_a_new_import(path, added, expected):
    """Mutation check: the same source with one forbidden import added fails."""
    sources = _sources()
    sources[path] += "\n" + added
    found = violations(sources)
    assert len(found) == 1 and expected in found[0], found


def test_imports_are_resolved():
    source = (
        "import os.path\n"
        "from . import base\n"
        "from ..checkpoint import Checkpoint\n"
        "def f():\n"
        "    from transformers.utils import logging\n"
    )
    assert list(imports("rules/x.py", source)) == [
        ("os.path", 1, True),
        ("r1release.rules.base", 2, True),
        ("r1release.checkpoint.Checkpoint", 3, True),
        ("transformers.utils.logging", 5, False),
    ]


def test_importing_the_package_loads_nothing_heavy():
    script = (
        f"import sys, r1release\nprint(sorted(m for m in {NOT_ON_IMPORT!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
