"""Writing one shard of the ingest plan: decode its videos' clips, encode them, write the tar.

Runs in the worker processes of :mod:`avpretrain.data.ingest.runner`; its input and output are plain
dicts, so they cross process boundaries cheaply. Nothing here raises for bad data: every clip
that cannot be written comes back as a skip record (path, clip, reason, detail).
"""

from __future__ import annotations

import errno
import logging
import os
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from avpretrain.data.ingest.decode import DecodedClip, DecodeOptions, Skip, Window, decode_clips
from avpretrain.data.schema import encode_sample, make_meta
from avpretrain.data.shards import write_shard

logger = logging.getLogger("avpretrain.ingest")


def sample_key(video_index: int, clip_index: int) -> str:
    """Key of a clip: position of its video in the plan and of the clip in the video."""
    return f"{video_index:07d}-{clip_index:05d}"


def _options(config: dict[str, Any], threads: int) -> DecodeOptions:
    return DecodeOptions(
        num_frames=config["frames"],
        short_side=config["short_side"],
        sample_rate=config["sample_rate"],
        min_seconds=config["min_seconds"],
        pad_short=config["short"] == "pad",
        silence_without_audio=config["no_audio"] == "silence",
        threads=threads,
    )


def _skip_record(video: dict[str, Any], reason: str, detail: str, w: Window) -> dict[str, Any]:
    return {
        "path": video["path"],
        "video_id": video["video_id"],
        "reason": reason,
        "detail": detail,
        "start": w.start,
        "end": w.end,
    }


def _video_samples(
    video: dict[str, Any],
    lo: int,
    hi: int,
    config: dict[str, Any],
    options: DecodeOptions,
    skips: list[dict[str, Any]],
) -> Iterator[dict[str, Any]]:
    """Encoded samples of clips ``lo:hi`` of one planned video; skips go to ``skips``."""
    clips = video["clips"]
    windows = [Window(i, clips[i]["start"], clips[i]["end"]) for i in range(lo, hi)]
    left = {w.index: w for w in windows}
    try:
        for item in decode_clips(
            video["path"],
            windows,
            options,
            video["duration"],
            use_audio=video["has_audio"],
            audio_stream=video.get("audio_stream", 0),
        ):
            sample = None if isinstance(item, Skip) else _encode(video, item, config)
            del left[item.window.index]  # only now: an encoding error must still be recorded
            if sample is None:
                assert isinstance(item, Skip)  # _encode always returns a sample
                skips.append(_skip_record(video, item.reason, item.detail, item.window))
            else:
                yield sample
    except Exception as err:  # a bug or an unforeseen library error must not stop the shard
        detail = f"unexpected {type(err).__name__}: {err}"
        logger.debug("decoding %s failed:\n%s", video["path"], traceback.format_exc())
        for w in left.values():
            skips.append(_skip_record(video, "decode_error", detail, w))


def _encode(video: dict[str, Any], clip: DecodedClip, config: dict[str, Any]) -> dict[str, Any]:
    spec = video["clips"][clip.window.index]
    meta = make_meta(
        video_id=spec.get("video_id", video["video_id"]),
        start=clip.window.start,
        end=clip.window.end,
        sample_rate=config["sample_rate"],
        frame_times=clip.frame_times,
        caption=spec.get("caption"),
        category=spec.get("category"),
        labels=spec.get("labels"),
        flags=clip.flags(),
        **({"annotations": spec["annotations"]} if "annotations" in spec else {}),
    )
    key = sample_key(video["index"], clip.window.index)
    return encode_sample(
        key,
        clip.frames,
        clip.audio,
        meta,
        jpeg_quality=config["jpeg_quality"],
        audio_codec=config.get("audio_codec", "flac"),
    )


def write_planned_shard(task: dict[str, Any]) -> dict[str, Any]:
    """Write one shard of the plan (module level, so worker processes can run it).

    Args:
        task: ``out``, ``name``, ``config``, ``threads`` and ``parts``: a list of
            ``(video, lo, hi)`` with ``video`` the planned video record plus its ``index``.

    Returns:
        ``name``, ``samples`` written, ``skipped`` (skip records) and ``error`` (None if fine).
    """
    config = task["config"]
    options = _options(config, task["threads"])
    skips: list[dict[str, Any]] = []

    def samples() -> Iterator[dict[str, Any]]:
        for video, lo, hi in task["parts"]:
            yield from _video_samples(video, lo, hi, config, options, skips)

    result = {"name": task["name"], "samples": 0, "skipped": skips, "error": None}
    path = Path(task["out"]) / task["name"]
    try:
        result["samples"] = write_shard(path, samples())
    except OSError as err:  # e.g. disk full: report the shard as failed, keep the others going
        reason = os.strerror(err.errno) if err.errno else str(err)
        code = errno.errorcode.get(err.errno or 0, "")
        result["error"] = f"writing {path} failed: {reason}" + (f" ({code})" if code else "")
    except Exception as err:
        result["error"] = f"writing {path} failed: {type(err).__name__}: {err}"
    return result
