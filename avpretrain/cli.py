"""The ``avpretrain`` command.

``fit``, ``validate``, ``test`` and ``predict`` go to LightningCLI (``--config`` YAML recipes);
the other subcommands are small argparse programs, each living beside the code it drives and
imported only when called, so ``avpretrain synth`` does not pay for importing the models.
"""

from __future__ import annotations

import importlib
import sys

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")

# name -> "module:function"; each function takes argv (list[str]) and returns an exit code
SUBCOMMANDS: dict[str, str] = {
    "ingest": "avpretrain.data.ingest.runner:main",
    "reencode": "avpretrain.data.ingest.reencode:main",
    "synth": "avpretrain.data.synthetic.world:main",
    "synth-quality": "avpretrain.data.synthetic.av_quality_world:main",
    "demo": "avpretrain.demo:main",
    "export": "avpretrain.export:main",
    "convert-yt-ntu-avq": "avpretrain.converters.yt_ntu_avq:main",
    "convert-llp": "avpretrain.converters.llp:main",
    "convert-music-avqa": "avpretrain.converters.music_avqa:main",
    "convert-vggsound": "avpretrain.converters.vggsound:main",
    "convert-audioset": "avpretrain.converters.audioset:main",
    "convert-vggss": "avpretrain.converters.vggss:main",
    "convert-vggss-pairs": "avpretrain.converters.vggss_pairs:main",
    "convert-avsbench": "avpretrain.converters.avsbench:main",
    "convert-sfqa": "avpretrain.converters.sfqa:main",
    "convert-avsd": "avpretrain.converters.avsd:main",
    "av-quality-kfold": "avpretrain.av_quality.kfold:main",
    "curate": "avpretrain.curation.cli:main",
    "text-tower": "avpretrain.curation.text_tower:main",
    "ablate": "avpretrain.ablation.cli:main",
    "mos": "avpretrain.av_quality.mos_cli:main",
    "recipes": "avpretrain.recipes.cli:main",
}


def _usage() -> str:
    names = ", ".join((*LIGHTNING_COMMANDS, *SUBCOMMANDS))
    return f"usage: avpretrain {{{names}}} ... (each takes --help)"


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``avpretrain <command> ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command in LIGHTNING_COMMANDS:
        from avpretrain.lightning_cli import run_lightning_cli
        from avpretrain.recipes import RecipeNotFoundError

        try:
            run_lightning_cli([command, *rest])
        except RecipeNotFoundError as err:
            print(f"avpretrain {command}: {err}", file=sys.stderr)
            return 2
        return 0
    if command not in SUBCOMMANDS:
        print(f"avpretrain: unknown command {command!r}\n{_usage()}", file=sys.stderr)
        return 2
    module_name, func_name = SUBCOMMANDS[command].split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    return int(func(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
