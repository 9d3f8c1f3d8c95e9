"""Embedders from outside the package (e.g. ImageBind), named on the command line.

``avpretrain curate --plugin my_pkg.imagebind:make_embedder --plugin-arg models/imagebind.pth``
imports ``my_pkg.imagebind`` and calls ``make_embedder(arg, device)``, which returns an object
following :class:`~avpretrain.curation.embedders.Embedder` (``name``, ``embed_audio``,
``embed_frames``, ``embed_text``, optionally ``modalities``). It scores every pair of modalities
it embeds that no other flag fills.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from avpretrain.curation.embedders import Embedder

Factory = Callable[[str | None, str], Embedder]


def load_plugin(spec: str, arg: str | None = None, device: str = "cpu") -> Embedder:
    """Build the embedder of ``spec`` (``module:callable``) as ``callable(arg, device)``.

    Raises:
        ValueError: naming ``spec``, when it is malformed, does not import, or what it returns
            lacks the protocol's methods.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"--plugin {spec!r}: expected MODULE:CALLABLE, e.g. my_pkg.ib:make")
    try:
        factory: Factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"--plugin {spec!r}: {err}") from err
    embedder = factory(arg, device)
    if not isinstance(embedder, Embedder):
        raise ValueError(
            f"--plugin {spec!r} returned a {type(embedder).__name__}, which lacks name, "
            "embed_audio, embed_frames or embed_text (avpretrain.curation.embedders.Embedder)"
        )
    return embedder
