"""The ingest plan: which clip of which video goes into which shard, fixed before decoding.

Every input is probed once (header only), its clip windows are laid out, and the clips are dealt
in input order into shards of exactly ``shard_size`` clips (a long video may straddle shards; the
later shard seeks to its part). The plan is stored as ``ingest-plan.json`` in the output folder,
so an interrupted run, rerun with the same settings, rebuilds exactly the shards that are missing,
whichever worker happens to write them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from avpretrain.arguments import choices
from avpretrain.data.audio_codec import AudioCodec
from avpretrain.data.ingest.decode import TOLERANCE_S, VideoSkipped, clip_windows, probe
from avpretrain.data.ingest.manifest import ClipSpec, VideoSource
from avpretrain.data.shards import shard_name

logger = logging.getLogger("avpretrain.ingest")

PLAN_NAME = "ingest-plan.json"
# 2: audio and frames placed by timestamp, rotation, audio stream choice (shards of a version 1
# plan were decoded otherwise, so such a plan is not resumed).
PLAN_VERSION = 2
NoAudio = Literal["skip", "silence"]  # videos without an audio stream: skip, or silent audio
ShortClips = Literal["pad", "skip"]  # clips shorter than asked: pad them, or skip them


@dataclass(frozen=True)
class IngestConfig:
    """Settings that decide the shards' content (stored in the plan; a rerun must match).

    Args:
        clip_seconds: length of the consecutive clips cut from videos without timestamps.
        frames: frames stored per clip.
        short_side: frames are shrunk to this short side (never enlarged).
        sample_rate: rate of the mono FLAC audio.
        shard_size: clips per shard.
        no_audio: "skip" videos without an audio stream, or keep them with "silence".
        short: "pad" clips shorter than asked or "skip" them.
        min_seconds: clips with less content than this are skipped whatever ``short`` says.
        prefix: shard file names are ``<prefix>-000000.tar``, ...
        jpeg_quality: JPEG quality of the frames.
        audio_codec: the audio member: ``flac`` (smallest) or ``pcm`` (raw 16-bit, no decoding
            in the loader; see :mod:`avpretrain.data.audio_codec`).
        audio_stream: which audio stream of each file to decode (position among its audio
            streams); None: the one marked default, else the first.
    """

    clip_seconds: float = 10.0
    frames: int = 10
    short_side: int = 256
    sample_rate: int = 16000
    shard_size: int = 256
    no_audio: NoAudio = "skip"
    short: ShortClips = "pad"
    min_seconds: float = 1.0
    prefix: str = "shard"
    jpeg_quality: int = 90
    audio_codec: AudioCodec = "flac"
    audio_stream: int | None = None

    def __post_init__(self) -> None:
        checks = {
            "clip_seconds > 0": self.clip_seconds > 0,
            "frames >= 1": self.frames >= 1,
            "short_side >= 1": self.short_side >= 1,
            "sample_rate >= 1000": self.sample_rate >= 1000,
            "shard_size >= 1": self.shard_size >= 1,
            _one_of("no_audio", NoAudio): self.no_audio in choices(NoAudio),
            _one_of("short", ShortClips): self.short in choices(ShortClips),
            "0 < min_seconds <= clip_seconds": 0 < self.min_seconds <= self.clip_seconds,
            "prefix has no '/' or '.'": "/" not in self.prefix and "." not in self.prefix,
            "1 <= jpeg_quality <= 100": 1 <= self.jpeg_quality <= 100,
            _one_of("audio_codec", AudioCodec): self.audio_codec in choices(AudioCodec),
            "audio_stream None or >= 0": self.audio_stream is None or self.audio_stream >= 0,
        }
        failed = [name for name, ok in checks.items() if not ok]
        if failed:
            raise ValueError(f"invalid ingest settings ({self}): need {', '.join(failed)}")


def _one_of(name: str, literal: Any) -> str:
    """The check's name in the error: ``no_audio in (skip, silence)``."""
    return f"{name} in ({', '.join(choices(literal))})"


def probe_task(path: str, audio_stream: int | None = None) -> dict[str, Any]:
    """Probe one file for the plan (module level, so worker processes can run it)."""
    try:
        result = probe(path, audio_stream)
    except VideoSkipped as err:
        return {"reason": err.reason, "detail": err.detail}
    return {
        "duration": result.duration,
        "has_audio": result.has_audio,
        "audio_stream": result.audio_stream,
        "audio_choice": result.audio_choice,
        "size": os.path.getsize(path),
    }


def changed_inputs(plan: dict[str, Any], shards: list[dict[str, Any]]) -> list[str]:
    """Videos of ``shards`` that are gone or whose size differs from when the plan was made.

    A shard written from them now would not match the plan or the shards written before.
    """
    changed = []
    for index in sorted({i for shard in shards for i, _, _ in shard["parts"]}):
        video = plan["videos"][index]
        try:
            size = os.path.getsize(video["path"])
        except OSError:
            changed.append(f"{video['path']} (gone)")
            continue
        if "size" in video and size != video["size"]:
            changed.append(f"{video['path']} ({video['size']} -> {size} bytes)")
    return changed


def inputs_fingerprint(sources: list[VideoSource]) -> str:
    """A hash of the input list, to tell whether a stored plan was made from the same inputs."""
    text = json.dumps([[s.path, s.video_id, [asdict(c) for c in s.clips]] for s in sources])
    return hashlib.sha256(text.encode()).hexdigest()


def _clip_record(start: float, end: float, spec: ClipSpec) -> dict[str, Any]:
    record: dict[str, Any] = {"start": start, "end": end}
    if spec.caption is not None:
        record["caption"] = spec.caption
    if spec.category is not None:
        record["category"] = spec.category
    if spec.labels:
        record["labels"] = list(spec.labels)
    if spec.video_id is not None:
        record["video_id"] = spec.video_id
    if spec.annotations is not None:
        record["annotations"] = spec.annotations
    return record


def _clips(
    source: VideoSource, duration: float, config: IngestConfig, skips: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The clip records of one video, sorted by start; what cannot be cut goes to ``skips``.

    A clip that would end more than ``clip_seconds`` after the video (an ``end`` in
    milliseconds, say) is refused as ``past_end``; one whose padding would exceed its content
    is kept, with ``mostly_padded`` in its record (warned about by :func:`build_plan`).
    """
    clips: list[dict[str, Any]] = []
    for spec in source.clips:
        if spec.start is None:
            windows = clip_windows(duration, config.clip_seconds, config.min_seconds)
            if not windows:
                detail = (
                    f"video of {duration:.2f} s is shorter than --min-seconds {config.min_seconds}"
                )
                skips.append(_skip(source, "too_short", detail))
            clips.extend(_clip_record(w.start, w.end, spec) for w in windows)
        elif spec.end is None:  # never: manifests give start and end together
            raise AssertionError(f"clip start {spec.start} without an end")
        elif spec.start + config.min_seconds > duration + TOLERANCE_S:
            detail = (
                f"clip {spec.start:.2f}-{spec.end:.2f} s is past the video's end ({duration:.2f} s)"
            )
            skips.append(_skip(source, "too_short", detail, spec.start, spec.end))
        elif spec.end > duration + config.clip_seconds:
            detail = (
                f"clip {spec.start:.2f}-{spec.end:.2f} s would end {spec.end - duration:.2f} s "
                f"after the video ({duration:.2f} s), more than --clip-seconds "
                f"{config.clip_seconds:g}: is the end in other units?"
            )
            skips.append(_skip(source, "past_end", detail, spec.start, spec.end))
        else:
            clips.append(_clip_record(spec.start, spec.end, spec))
    for clip in clips:
        padding = clip["end"] - max(duration, clip["start"])
        if padding > TOLERANCE_S and padding > duration - clip["start"]:
            clip["mostly_padded"] = True
    return sorted(clips, key=lambda c: c["start"])


def _skip(
    source: VideoSource,
    reason: str,
    detail: str,
    start: float | None = None,
    end: float | None = None,
) -> dict[str, Any]:
    """A skip record; ``start`` None means the whole video."""
    return {
        "path": source.path,
        "video_id": source.video_id,
        "reason": reason,
        "detail": detail,
        "start": start,
        "end": end,
    }


def _deal(videos: list[dict[str, Any]], config: IngestConfig) -> list[dict[str, Any]]:
    """Deal clips in input order into shards of ``shard_size`` clips."""
    shards: list[dict[str, Any]] = []
    for index, video in enumerate(videos):
        lo, count = 0, len(video["clips"])
        while lo < count:
            if not shards or shards[-1]["clips"] == config.shard_size:
                shards.append(
                    {"name": shard_name(config.prefix, len(shards)), "parts": [], "clips": 0}
                )
            shard = shards[-1]
            hi = min(count, lo + config.shard_size - shard["clips"])
            shard["parts"].append([index, lo, hi])
            shard["clips"] += hi - lo
            lo = hi
    return shards


def build_plan(
    sources: list[VideoSource],
    probes: list[dict[str, Any]],
    config: IngestConfig,
    classes: list[str] | None,
) -> dict[str, Any]:
    """Lay out clips and shards from the probe result of every source (same order)."""
    videos: list[dict[str, Any]]
    skipped_videos: list[dict[str, Any]]
    skipped_clips: list[dict[str, Any]]
    videos, skipped_videos, skipped_clips = [], [], []
    for source, info in zip(sources, probes, strict=True):
        if "reason" in info:
            skipped_videos.append(_skip(source, info["reason"], info["detail"]))
            continue
        if not info["has_audio"] and config.no_audio == "skip":
            skipped_videos.append(_skip(source, "no_audio", "no audio stream (--no-audio skip)"))
            continue
        skips: list[dict[str, Any]] = []
        clips = _clips(source, info["duration"], config, skips)
        for skip in skips:
            (skipped_videos if skip["start"] is None else skipped_clips).append(skip)
        if info["audio_choice"] is not None:
            logger.info("%s: %s", source.path, info["audio_choice"])
        for clip in clips:
            if clip.get("mostly_padded"):
                content = max(info["duration"] - clip["start"], 0.0)
                logger.warning(
                    "%s clip %.2f-%.2f s: the video ends at %.2f s, so %.2f s of padding follow "
                    "%.2f s of content",
                    source.path,
                    clip["start"],
                    clip["end"],
                    info["duration"],
                    clip["end"] - clip["start"] - content,
                    content,
                )
        if clips:
            videos.append(
                {"path": source.path, "video_id": source.video_id, **info, "clips": clips}
            )
    return {
        "version": PLAN_VERSION,
        "config": asdict(config),
        "inputs": inputs_fingerprint(sources),
        "classes": classes,
        "videos": videos,
        "skipped_videos": skipped_videos,
        "skipped_clips": skipped_clips,
        "shards": _deal(videos, config),
    }


def save_plan(out: Path, plan: dict[str, Any]) -> Path:
    """Write the plan atomically to ``out/ingest-plan.json``."""
    path = out / PLAN_NAME
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(plan, separators=(",", ":")))
    os.replace(tmp, path)
    return path


def load_plan(out: Path, config: IngestConfig, sources: list[VideoSource]) -> dict[str, Any] | None:
    """The stored plan of ``out``, or None if there is none.

    Raises:
        ValueError: the plan was made with other settings or other inputs.
    """
    path = out / PLAN_NAME
    if not path.exists():
        return None
    try:
        plan = json.loads(path.read_text())
    except ValueError as err:  # JSONDecodeError, or bytes that are not UTF-8
        raise ValueError(
            f"{path} is not a readable plan ({err}); delete it and the shards beside it to "
            "start over, or use a new --out"
        ) from None
    stored = plan.get("config", {})
    wanted = asdict(config)
    # A setting newer than the plan counts as its default there (old plans stay resumable).
    stored = {**asdict(IngestConfig()), **stored}
    differ = [f"{k}: {stored.get(k)!r} -> {v!r}" for k, v in wanted.items() if stored.get(k) != v]
    if plan.get("version") != PLAN_VERSION:
        raise ValueError(
            f"{path} is a version {plan.get('version')} plan; this avpretrain writes version "
            f"{PLAN_VERSION} (audio and frames placed by timestamp), so its shards would not "
            "match: finish that run with the avpretrain that began it, or use a new --out"
        )
    if differ:
        raise ValueError(
            f"{path} was made with other settings ({'; '.join(differ)}); "
            "rerun with the same settings to resume, or use a new --out"
        )
    if plan.get("inputs") != inputs_fingerprint(sources):
        raise ValueError(
            f"{path} was made from other inputs (files or manifest rows changed); "
            "use a new --out, or delete the plan and the shards to start over"
        )
    return plan
