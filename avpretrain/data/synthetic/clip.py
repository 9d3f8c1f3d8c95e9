"""One synthetic clip, from its seed to a webdataset sample with full ground truth.

A clip depends only on ``(cfg, split, index)``: its random stream is seeded from the world seed,
the split and the clip index, so clips come out identical however shards are spread over workers.
Corruptions (for testing curation filters) are applied after rendering; the clip's ground truth
still describes the clean clip, and ``synthetic.corruption`` says what was done to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from avpretrain.data.schema import encode_sample, make_meta
from avpretrain.data.synthetic.audio import render_sources
from avpretrain.data.synthetic.classes import ClassSpec, class_spec, instance_spec
from avpretrain.data.synthetic.config import SynthConfig
from avpretrain.data.synthetic.questions import make_caption, make_questions
from avpretrain.data.synthetic.render import render_frames
from avpretrain.data.synthetic.scene import ObjectPlan, plan_clip, second_of

SPLITS = {"train": 0, "val": 1}
CORRUPTIONS = ("swap_audio", "shift_audio", "swap_caption")
# Stream ids under (seed, split): clips and the corruption plan never share random numbers.
_CLIP_STREAM, _CORRUPTION_STREAM = 0, 1
_SWAP_TRIES = 32
_SHIFT_TRIES = 8


@dataclass
class Clip:
    """A rendered clean clip.

    Attributes:
        key: sample key, ``"<split>-<index:06d>"``.
        objects, specs: the plan and each object's look and sound (its class's; in the hard
            world with the instance's own colour and pitch).
        frames: [F, H, W, 3] uint8.
        masks: [F, H, W] uint8, object index + 1 (0 background).
        boxes: per object, per frame ``[x0, y0, x1, y1]`` pixels, or None off-screen.
        sources: [S, samples] float32, the sounding objects' isolated audio in objects order.
        source_object: [S] int64, object index of each source.
        mixture: [samples] float32, the sum of the sources.
        loudness: per object, RMS of its source while on, None if silent.
        caption, questions: derived text.
    """

    key: str
    objects: list[ObjectPlan]
    specs: list[ClassSpec]
    frames: np.ndarray
    masks: np.ndarray
    boxes: list[list[list[float]] | None]
    sources: np.ndarray
    source_object: np.ndarray
    mixture: np.ndarray
    loudness: list[float | None]
    caption: str
    questions: list[dict[str, str]]


@dataclass(frozen=True)
class Corruption:
    """What is wrong with a corrupted clip.

    Attributes:
        kind: one of ``CORRUPTIONS``.
        source_index: the clip (same split) whose audio or caption was taken, for swaps.
        shift_samples: circular shift of the audio, for ``shift_audio``.
    """

    kind: str
    source_index: int | None = None
    shift_samples: int | None = None


def clip_key(split: str, index: int) -> str:
    """Sample key of clip ``index`` of ``split``."""
    return f"{split}-{index:06d}"


def _planned(
    cfg: SynthConfig, split: str, index: int
) -> tuple[np.random.Generator, list[ObjectPlan], list[ClassSpec]]:
    # Planning is the first use of a clip's stream, so a plan alone is cheap to recompute.
    rng = np.random.default_rng([cfg.seed, SPLITS[split], _CLIP_STREAM, index])
    objects = plan_clip(cfg, rng)
    specs = [class_spec(o.class_id, cfg.difficulty) for o in objects]
    if cfg.difficulty == "hard":
        specs = [instance_spec(spec, rng) for spec in specs]
    return rng, objects, specs


def swap_is_visible(objects: list[ObjectPlan], partner: list[ObjectPlan]) -> bool:
    """Whether ``partner``'s sounds played over this clip's frames contradict them.

    They do when an on-screen object drawn sounding goes unheard, or one drawn silent is heard.

    A clip's own audio never does (classes are distinct within a clip). A partner whose sounds
    add to this clip's on-screen sounds without contradicting them is passed over by swaps: it
    sounds like the clip with one more off-screen source, which no frame can tell apart.
    """
    heard = {o.class_id for o in partner if o.sounding}
    return any(o.on_screen and o.sounding != (o.class_id in heard) for o in objects)


def _swap_partner(
    cfg: SynthConfig, split: str, index: int, num_clips: int, kind: str, rng: np.random.Generator
) -> int:
    """A random other clip that really mismatches this one when swapped in.

    Its caption differs from this one's (or its audio contradicts these frames,
    :func:`swap_is_visible`); after ``_SWAP_TRIES`` misses, the last one drawn.
    """
    _, own, own_specs = _planned(cfg, split, index)
    for _ in range(_SWAP_TRIES):
        j = int(rng.integers(num_clips - 1))
        j += j >= index
        _, other, other_specs = _planned(cfg, split, j)
        if kind == "swap_caption":
            mismatch = make_caption(other, other_specs) != make_caption(own, own_specs)
        else:
            mismatch = swap_is_visible(own, other)
        if mismatch:
            break
    return j


def render_clip(cfg: SynthConfig, split: str, index: int) -> Clip:
    """Render clip ``index`` of ``split`` (``"train"`` or ``"val"``), clean."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
    rng, objects, specs = _planned(cfg, split, index)
    frames, masks, boxes = render_frames(
        objects,
        specs,
        cfg.frame_times,
        cfg.clip_seconds,
        cfg.frame_size,
        rng,
        cluttered=cfg.difficulty == "hard",
    )
    heard = [i for i, o in enumerate(objects) if o.sounding]
    sources, mixture, loud = render_sources(
        [specs[i] for i in heard],
        [objects[i].audio_on for i in heard],
        [cast(float, objects[i].level_db) for i in heard],  # sounding objects have a level
        cfg.num_samples,
        cfg.sample_rate,
        rng,
    )
    loudness: list[float | None] = [None] * len(objects)
    for j, i in enumerate(heard):
        loudness[i] = loud[j]
    return Clip(
        key=clip_key(split, index),
        objects=objects,
        specs=specs,
        frames=frames,
        masks=masks,
        boxes=boxes,
        sources=sources,
        source_object=np.asarray(heard, dtype=np.int64),
        mixture=mixture,
        loudness=loudness,
        caption=make_caption(objects, specs),
        questions=make_questions(objects, specs, loudness, rng),
    )


def shift_is_visible(
    objects: list[ObjectPlan], frame_times: list[float], clip_seconds: float, shift: float
) -> bool:
    """Whether the frames can show that a clip's audio is rolled by ``shift`` seconds.

    A sounding object is drawn marked while its sound is on, so a shift shows when some
    on-screen sounding object is on at one frame's moment and off at the moment whose sound now
    plays there (or the reverse). Objects that sound all clip long look the same at any shift:
    a clip of only such objects is out of step in no way its frames reveal.
    """
    for obj in objects:
        if not (obj.sounding and obj.on_screen):
            continue
        seconds = len(obj.audio_on)
        for t in frame_times:
            now, heard = second_of(t, seconds), second_of((t - shift) % clip_seconds, seconds)
            if obj.audio_on[now] != obj.audio_on[heard]:
                return True
    return False


def _visible_shift(
    cfg: SynthConfig, split: str, index: int, rng: np.random.Generator
) -> int | None:
    """A circular shift that clip ``index``'s frames can show, or None.

    In samples, at least a quarter of the clip either way; None when ``_SHIFT_TRIES`` draws find
    none.
    """
    n = cfg.num_samples
    quarter = -(-n // 4)
    objects = _planned(cfg, split, index)[1]
    for _ in range(_SHIFT_TRIES):
        shift = int(rng.integers(quarter, n - quarter + 1))
        if shift_is_visible(objects, cfg.frame_times, cfg.clip_seconds, shift / cfg.sample_rate):
            return shift
    return None


def corruption_plan(cfg: SynthConfig, split: str, num_clips: int) -> dict[int, Corruption]:
    """Which clips of a split are corrupted, and how.

    Each kind gets ``round(corrupt_fraction * num_clips)`` distinct clips (fewer if the split is
    too small). Swaps take from a random other clip that differs. Shifts move the audio
    circularly by at least a quarter of the clip either way, and only where the frames can show
    it (:func:`shift_is_visible`): a clip whose sounds all last the whole clip is passed over, as
    rolling its audio changes nothing any synchrony score could see (fewer shifted clips if too
    few qualify).
    """
    count = min(round(cfg.corrupt_fraction * num_clips), num_clips // len(CORRUPTIONS))
    if count == 0 or num_clips < 2:
        return {}
    rng = np.random.default_rng([cfg.seed, SPLITS[split], _CORRUPTION_STREAM])
    order = rng.permutation(num_clips).tolist()
    plan: dict[int, Corruption] = {}
    for kind in CORRUPTIONS:
        taken = 0
        for i in order:
            if taken == count:
                break
            if i in plan:
                continue
            if kind == "shift_audio":
                shift = _visible_shift(cfg, split, i, rng)
                if shift is None:
                    continue
                plan[i] = Corruption(kind, shift_samples=shift)
            else:
                j = _swap_partner(cfg, split, i, num_clips, kind, rng)
                plan[i] = Corruption(kind, source_index=j)
            taken += 1
    return plan


def _object_record(clip: Clip, i: int, num_seconds: int) -> dict[str, Any]:
    obj, spec, loud = clip.objects[i], clip.specs[i], clip.loudness[i]
    return {
        "class_id": obj.class_id,
        "class_name": spec.name,
        "sounding": obj.sounding,
        "on_screen": obj.on_screen,
        "location": obj.location,
        "boxes": clip.boxes[i],
        "audio_on": obj.audio_on,
        "visual_on": obj.visual_on(num_seconds),
        "loudness": None if loud is None else round(loud, 6),
    }


def clip_meta(
    cfg: SynthConfig, clip: Clip, caption: str, corruption: Corruption | None
) -> dict[str, Any]:
    """The JSON record of a clip (schema fields plus ``synthetic``)."""
    n_sec = cfg.num_seconds
    records = [_object_record(clip, i, n_sec) for i in range(len(clip.objects))]
    heard = [r for r in records if r["sounding"]]
    loudest = max(heard, key=lambda r: r["loudness"])

    def events(flag: str) -> list[list[int]]:
        return [sorted(r["class_id"] for r in records if r[flag][s]) for s in range(n_sec)]

    synthetic = {
        "objects": records,
        "events": {"audio": events("audio_on"), "visual": events("visual_on")},
        "questions": clip.questions,
        "corruption": None if corruption is None else corruption.kind,
        "source_index": None if corruption is None else corruption.source_index,
        "shift_seconds": None
        if corruption is None or corruption.shift_samples is None
        else corruption.shift_samples / cfg.sample_rate,
    }
    return make_meta(
        video_id=clip.key,
        start=0.0,
        end=cfg.clip_seconds,
        sample_rate=cfg.sample_rate,
        frame_times=cfg.frame_times,
        caption=caption,
        category=loudest["class_name"],
        # the primary (loudest) class first, so single-label tasks read ``labels[0]``
        labels=[loudest["class_id"]]
        + sorted(r["class_id"] for r in heard if r["class_id"] != loudest["class_id"]),
        synthetic=synthetic,
    )


def make_sample(
    cfg: SynthConfig, split: str, index: int, corruption: Corruption | None = None
) -> dict[str, Any]:
    """Render clip ``index`` of ``split``, corrupt it if asked, and encode it as a sample."""
    clip = render_clip(cfg, split, index)
    audio, caption = clip.mixture, clip.caption
    if corruption is not None:
        if corruption.kind == "shift_audio":
            assert corruption.shift_samples is not None  # set for this kind
            audio = np.roll(audio, corruption.shift_samples)
        elif corruption.kind == "swap_audio":
            assert corruption.source_index is not None  # set for swaps
            audio = render_clip(cfg, split, corruption.source_index).mixture
        elif corruption.kind == "swap_caption":
            assert corruption.source_index is not None
            caption = render_clip(cfg, split, corruption.source_index).caption
        else:
            raise ValueError(f"unknown corruption {corruption.kind!r}")
    gt = {"masks": clip.masks, "sources": clip.sources, "source_object": clip.source_object}
    meta = clip_meta(cfg, clip, caption, corruption)
    return encode_sample(clip.key, list(clip.frames), audio, meta, gt)
