"""Configuration of the synthetic audio-visual world (``avpretrain synth``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from avpretrain.arguments import check_choice
from avpretrain.data.synthetic.classes import Difficulty, max_classes

# Objects sit in the cells of a 3 x 3 grid, one object per cell, so no object is ever hidden.
GRID = 3
# Default chance of an off-screen sound per difficulty.
OFFSCREEN_PROB = {"easy": 0.2, "hard": 0.4}


@dataclass
class SynthConfig:
    """Size and statistics of a synthetic world.

    Args:
        clips: number of training clips.
        val_clips: number of validation clips; ``None`` means ``clips // 4``.
        num_classes: object classes (each with its own look and sound), at most
            ``max_classes(difficulty)`` (72 easy, 24 hard).
        clip_seconds: clip length in seconds.
        num_frames: frames stored per clip, at times ``(i + 0.5) * clip_seconds / num_frames``.
        frame_size: frame height and width in pixels.
        sample_rate: audio rate in Hz.
        max_objects: most on-screen objects per clip (1 to 9); an off-screen sound may come on top.
        seed: world seed; train and val use distinct streams derived from it.
        shard_size: clips per shard.
        corrupt_fraction: fraction of clips given each of the three corruptions (swapped audio,
            shifted audio, swapped caption), so at most 1/3.
        silent_prob: probability that an on-screen object makes no sound.
        offscreen_prob: probability that a clip has an off-screen (audio-only) sounding object;
            None: ``OFFSCREEN_PROB[difficulty]`` (more distracting sounds in the hard world).
        difficulty: ``"hard"``: colour and pitch drawn per object independently of its class,
            sizes jittered more widely, a cluttered backdrop (see ``synth_classes``);
            ``"easy"``: every class has its own colour and pitch.
    """

    clips: int = 64
    val_clips: int | None = None
    num_classes: int = 8
    clip_seconds: float = 10.0
    num_frames: int = 10
    frame_size: int = 224
    sample_rate: int = 16000
    max_objects: int = 3
    seed: int = 0
    shard_size: int = 64
    corrupt_fraction: float = 0.0
    silent_prob: float = 0.25
    offscreen_prob: float | None = None
    difficulty: Difficulty = "hard"

    def __post_init__(self) -> None:
        if self.val_clips is None:
            self.val_clips = self.clips // 4
        check_choice("SynthConfig: difficulty", self.difficulty, Difficulty)
        if self.offscreen_prob is None:
            self.offscreen_prob = OFFSCREEN_PROB[self.difficulty]
        top = max_classes(self.difficulty)
        checks = [
            (self.clips >= 0 and self.val_clips >= 0, "clips and val_clips must be >= 0"),
            (
                1 <= self.num_classes <= top,
                f"num_classes must be in 1..{top} for a {self.difficulty} world",
            ),
            (self.clip_seconds > 0, "clip_seconds must be > 0"),
            (self.num_frames >= 1, "num_frames must be >= 1"),
            (self.frame_size >= 16, "frame_size must be >= 16 pixels"),
            (self.sample_rate >= 4000, "sample_rate must be >= 4000 Hz"),
            (1 <= self.max_objects <= GRID * GRID, f"max_objects must be in 1..{GRID * GRID}"),
            (self.shard_size >= 1, "shard_size must be >= 1"),
            (0.0 <= self.corrupt_fraction <= 1 / 3, "corrupt_fraction must be in [0, 1/3]"),
            (0.0 <= self.silent_prob <= 1.0, "silent_prob must be in [0, 1]"),
            (0.0 <= self.offscreen_prob <= 1.0, "offscreen_prob must be in [0, 1]"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"SynthConfig: {message}")

    @property
    def num_seconds(self) -> int:
        """Number of (possibly partial, the last one) one-second segments of a clip."""
        return max(1, math.ceil(self.clip_seconds - 1e-9))

    @property
    def num_samples(self) -> int:
        """Audio samples per clip."""
        return round(self.clip_seconds * self.sample_rate)

    @property
    def frame_times(self) -> list[float]:
        """Time of each stored frame from the clip start, seconds."""
        step = self.clip_seconds / self.num_frames
        return [(i + 0.5) * step for i in range(self.num_frames)]
