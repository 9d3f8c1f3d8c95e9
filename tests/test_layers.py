"""The layout's one rule for ``avpretrain/data/``: no import runs upward.

``data/`` (the shard format, ingest, the synthetic world, loading) sits below every other
package of the code map in the README; it may import only itself and the leaf helper
``avpretrain.arguments``. Every module is parsed with :mod:`ast`, so lazy imports inside
functions and ``TYPE_CHECKING`` blocks count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import avpretrain

PACKAGE = Path(avpretrain.__file__).parent
DATA = PACKAGE / "data"
# What data/ may import from avpretrain: itself and the leaf helpers below it.
BELOW_DATA = {"data", "arguments"}


def top_level_names() -> set[str]:
    """The packages and modules directly under ``avpretrain/``."""
    names = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    names |= {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    return names


def avpretrain_imports(source: str, package: str) -> list[tuple[int, str]]:
    """``(line, module)`` of every avpretrain import in ``source``, a module of ``package``.

    Relative imports are resolved against ``package``; ``from avpretrain import x`` counts as
    an import of ``avpretrain.x``.
    """
    parts = package.split(".")
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{module}" if module else base
            if module == "avpretrain":
                found += [(node.lineno, f"avpretrain.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, module))
    return sorted((line, m) for line, m in found if m.split(".")[0] == "avpretrain")


def upward_imports(source: str, package: str, above: set[str]) -> list[tuple[int, str]]:
    """The imports of ``source`` (a module of ``package``) that reach a package in ``above``."""
    return [
        (line, module)
        for line, module in avpretrain_imports(source, package)
        if len(module.split(".")) > 1 and module.split(".")[1] in above
    ]


def test_the_layers_above_data_are_the_code_map_packages():
    above = top_level_names() - BELOW_DATA
    for name in ("models", "training", "heads", "metrics", "tasks", "av_quality", "converters"):
        assert name in above
    assert len(list(DATA.rglob("*.py"))) > 20


def test_data_imports_nothing_above_it():
    above = top_level_names() - BELOW_DATA
    upward = []
    for path in sorted(DATA.rglob("*.py")):
        package = ".".join(path.relative_to(PACKAGE.parent).parent.parts)
        for line, module in upward_imports(path.read_text(encoding="utf-8"), package, above):
            upward.append(f"{path.relative_to(PACKAGE.parent)}:{line}: imports {module}")
    assert upward == [], "data/ imports a layer above it:\n" + "\n".join(upward)


def test_the_check_sees_every_import_form():
    source = (
        "import avpretrain.tasks.base\n"
        "from avpretrain.av_quality import opinion\n"
        "from avpretrain import converters, data\n"
        "def lazy():\n"
        "    from ...heads import classification\n"
        "from .world import write_world\n"
        "from avpretrain.arguments import check_choice\n"
        "import numpy\n"
    )
    above = top_level_names() - BELOW_DATA
    assert upward_imports(source, "avpretrain.data.synthetic", above) == [
        (1, "avpretrain.tasks.base"),
        (2, "avpretrain.av_quality"),
        (3, "avpretrain.converters"),
        (5, "avpretrain.heads"),
    ]
