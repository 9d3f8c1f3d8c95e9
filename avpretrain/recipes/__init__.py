"""The shipped recipes: ``configs/`` (pretraining, ablation grids) and ``tasks/`` (downstream).

The repository keeps both folders at its top level; ``avpretrain/recipes/configs`` and
``avpretrain/recipes/tasks`` link to them, so a built wheel carries them as package data and an
installed package reads them with :mod:`importlib.resources`, from any working directory.

A recipe is named by a path (used as given when the file exists) or by its packaged name:
``pretrain/tiny`` (``configs/pretrain/tiny.yaml``), ``ablate/tiny``,
``tasks/classification/synth_linear``; a ``configs/`` prefix and the ``.yaml`` suffix are
optional, so the repository-relative paths of the README work outside a checkout too.
"""

from __future__ import annotations

import atexit
import contextlib
import difflib
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importlib.resources.abc is Python >= 3.11; only the annotations use it
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable


class RecipeNotFoundError(FileNotFoundError):
    """A recipe that is neither an existing file nor a packaged recipe name."""


def _root() -> Traversable:
    return resources.files(__name__)


def _walk(node: Traversable, prefix: str) -> list[str]:
    names = []
    for child in node.iterdir():
        if child.is_dir():
            names += _walk(child, f"{prefix}{child.name}/")
        elif child.name.endswith(".yaml"):
            names.append(prefix + child.name.removesuffix(".yaml"))
    return names


def recipe_names() -> list[str]:
    """Every packaged recipe name, sorted: ``ablate/tiny``, ..., ``tasks/separation/synth``."""
    root = _root()
    configs = _walk(root / "configs", "")
    tasks = _walk(root / "tasks", "tasks/")
    return sorted(configs) + sorted(tasks)


def _packaged(name: str) -> Traversable:
    """The packaged file of a recipe name.

    Names such as ``pretrain/tiny`` or ``tasks/x/y``, with or without the ``configs/`` prefix and
    ``.yaml`` suffix.
    """
    key = name.strip().strip("/").removesuffix(".yaml").removeprefix("configs/")
    group, rest = (
        ("tasks", key.removeprefix("tasks/"))
        if key.startswith("tasks/")
        else (
            "configs",
            key,
        )
    )
    node = _root() / group
    for part in f"{rest}.yaml".split("/"):
        node = node / part
    if not node.is_file():
        known = recipe_names()
        close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise RecipeNotFoundError(
            f"recipe {name!r}: no such file, and no packaged recipe of that name{hint} "
            "(`avpretrain recipes` lists them)"
        )
    return node


_extracted = contextlib.ExitStack()
atexit.register(_extracted.close)


def resolve_recipe(name: str | Path) -> Path:
    """A recipe's file on disk: ``name`` itself when that file exists, else the packaged recipe.

    Raises:
        RecipeNotFoundError: neither an existing file nor a packaged recipe (the message lists
            the nearest packaged names).
    """
    if Path(name).is_file():
        return Path(name)
    node = _packaged(str(name))
    # a zipped install extracts the file for the life of the process; a normal one is a Path
    return node if isinstance(node, Path) else _extracted.enter_context(resources.as_file(node))


def recipe_summary(name: str) -> str:
    """The first comment line of a packaged recipe (its one-line description), or ``""``."""
    first = _packaged(name).read_text().splitlines()[:1]
    return first[0].lstrip("# ").strip() if first and first[0].startswith("#") else ""
