"""Heads whose layer widths are bound once the encoders are known (``head.bind(...)``)."""

from __future__ import annotations


def already_bound(built: tuple[int | None, ...] | None, wanted: tuple[int | None, ...]) -> bool:
    """True if a head was already built for ``wanted`` widths, False if not built yet.

    Raises:
        ValueError: the head was built for other widths.
    """
    if built is None or built == (None,) * len(built):
        return False
    if tuple(built) != tuple(wanted):
        raise ValueError(f"head built for widths {tuple(built)}, not {tuple(wanted)}")
    return True
