"""``avpretrain recipes``: list the packaged recipes, or copy one out to edit.

avpretrain recipes                                       # name and description of each
avpretrain recipes --copy pretrain/tiny my_tiny.yaml     # a copy to edit
avpretrain recipes --copy tasks/retrieval/synth recipes/ # into a folder, keeping its name
avpretrain fit --config pretrain/tiny                    # any name works as --config
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from avpretrain.recipes import RecipeNotFoundError, recipe_names, recipe_summary, resolve_recipe


def copy_recipe(name: str, dest: str | Path, force: bool = False) -> Path:
    """Copy the packaged recipe ``name`` to ``dest`` (a file, or an existing folder).

    Raises:
        FileExistsError: the target exists and ``force`` is False.
    """
    source = resolve_recipe(name)
    target = Path(dest)
    if target.is_dir():
        target = target / source.name
    if target.exists() and not force:
        raise FileExistsError(f"{target} exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def main(argv: list[str] | None = None) -> int:
    """List or copy recipes; returns an exit code."""
    p = argparse.ArgumentParser(
        prog="avpretrain recipes", description=__doc__.split("\n")[0].strip("`: ")
    )
    p.add_argument("--copy", nargs=2, metavar=("NAME", "DEST"), help="copy recipe NAME to DEST")
    p.add_argument("--force", action="store_true", help="overwrite DEST")
    args = p.parse_args(argv)
    if args.copy:
        try:
            name, dest = args.copy  # nargs=2
            target = copy_recipe(name, dest, force=args.force)
        except (RecipeNotFoundError, FileExistsError) as err:
            print(f"avpretrain recipes: {err}", file=sys.stderr)
            return 2
        print(f"copied {args.copy[0]} to {target}")
        return 0
    names = recipe_names()
    width = max(map(len, names))
    for name in names:
        print(f"{name:{width}s}  {recipe_summary(name)}")
    print(f"\n{len(names)} recipes; use a name as `avpretrain fit --config NAME`")
    return 0
