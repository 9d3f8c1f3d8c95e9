"""``avpretrain export``: the encoders of a pretraining checkpoint as an encoder file.

``avpretrain export --ckpt runs/base/checkpoints/last.ckpt --out encoders.pt``; the file format
is :mod:`avpretrain.models.encoder_file`'s.
"""

from __future__ import annotations

import argparse
import sys

from avpretrain.models.encoder_file import model_from_checkpoint, save_encoders


def main(argv: list[str]) -> int:
    """``avpretrain export --ckpt CKPT --out FILE``."""
    p = argparse.ArgumentParser(prog="avpretrain export", description=__doc__.split("\n")[0])
    p.add_argument("--ckpt", required=True, help="pretraining checkpoint (e.g. last.ckpt)")
    p.add_argument("--out", required=True, help="encoder file to write")
    args = p.parse_args(argv)
    try:
        model = model_from_checkpoint(args.ckpt)  # its errors name the file
        try:
            out = save_encoders(model, args.out)
        except ValueError as err:
            raise ValueError(f"{args.ckpt}: {err}") from err
    except ValueError as err:
        print(f"avpretrain export: error: {err}", file=sys.stderr)
        return 2
    print(f"encoders of {args.ckpt} written to {out}")
    return 0
