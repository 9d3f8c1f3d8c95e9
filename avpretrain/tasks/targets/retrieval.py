"""The caption of each clip, for text-to-audio-visual retrieval (an ``AVDataModule`` target).

Captions stay strings here (they collate into a list of B strings); the task tokenises them with
its text encoder's tokenizer, which owns the maximum length.
"""

from __future__ import annotations

from typing import Any


def caption_targets(sample: dict[str, Any], meta: dict[str, Any], opts: Any) -> dict[str, str]:
    """``{"caption": str}`` from the clip's JSON ``caption`` (written by ingest or synth).

    Args:
        sample: the raw shard sample (only its ``__key__`` is used, for the error).
        meta: the clip's parsed JSON.
        opts: the loader's ``SampleOptions`` (unused).

    Raises:
        ValueError: no caption, or not a non-empty string. The loader logs the clip's key and
            shard with this message and counts it as skipped.
    """
    caption = meta.get("caption")
    if not isinstance(caption, str) or not caption.strip():
        raise ValueError(
            f"clip {sample.get('__key__')!r} has no caption (JSON 'caption' is {caption!r}); "
            f"text retrieval needs one per clip: give the ingest manifest a 'caption' column"
        )
    return {"caption": caption}
