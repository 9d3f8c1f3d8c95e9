"""What happens in one synthetic clip: which objects, where, and when each one sounds.

A plan is pure bookkeeping (no pixels, no samples); rendering follows it. On-screen objects each
get their own cell of a 3 x 3 grid and drift slowly within it, so an object is never hidden and
its cell names its location; an off-screen object is heard but never seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avpretrain.data.synthetic.config import GRID, SynthConfig

# Cell names, row-major, as answers to "where" questions.
LOCATIONS = (
    "top left", "top", "top right",
    "left", "center", "right",
    "bottom left", "bottom", "bottom right",
)  # fmt: skip
OFF_SCREEN = "off-screen"
# A sounding object is drawn this much larger (and brighter) while its sound is on.
MARK_SCALE = 1.2
_RADIUS = {"easy": (0.30, 0.38), "hard": (0.22, 0.42)}  # of the cell size
_DRIFT = 0.08  # of the cell size: start jitter and total motion, each per axis
_LEVEL_STEP_DB = 3.0  # loudness gap between sounding objects, so "louder" is well defined
_BASE_LEVEL_DB = (-16.0, -10.0)
_ALWAYS_ON = 0.4
_SECOND_INTERVAL = 0.3


@dataclass
class ObjectPlan:
    """One object of a clip.

    Attributes:
        class_id: its class.
        sounding: whether it makes a sound at some point of the clip.
        on_screen: whether it is visible (then for the whole clip).
        cell: grid cell (row-major index into ``LOCATIONS``) or None off-screen.
        radius: half the side of its bounding square, pixels, unmarked.
        start, end: centre (x, y) in pixels at the clip's start and end; it moves linearly.
        audio_on: per second, 1 while its sound is on.
        level_db: loudness while on, dB full scale before the mixture's peak scaling; None if
            silent.
    """

    class_id: int
    sounding: bool
    on_screen: bool
    cell: int | None
    radius: float
    start: tuple[float, float]
    end: tuple[float, float]
    audio_on: list[int]
    level_db: float | None

    @property
    def location(self) -> str:
        """Cell name, or ``"off-screen"``."""
        return OFF_SCREEN if self.cell is None else LOCATIONS[self.cell]

    def visual_on(self, num_seconds: int) -> list[int]:
        """Per second, 1 while visible."""
        return [int(self.on_screen)] * num_seconds

    def centre(self, t: float, clip_seconds: float) -> tuple[float, float]:
        """Centre (x, y) in pixels at time ``t``."""
        a = t / clip_seconds
        return (
            self.start[0] + a * (self.end[0] - self.start[0]),
            self.start[1] + a * (self.end[1] - self.start[1]),
        )

    def marked(self, t: float) -> bool:
        """Whether it is drawn marked (its sound is on) at time ``t``."""
        return self.sounding and bool(self.audio_on[second_of(t, len(self.audio_on))])


def second_of(t: float, num_seconds: int) -> int:
    """Index of the one-second segment holding time ``t``."""
    return min(max(int(t), 0), num_seconds - 1)


def sample_audio_on(rng: np.random.Generator, num_seconds: int) -> list[int]:
    """Per-second flags of a sounding object: always on, or one or two intervals (never empty)."""
    on = np.zeros(num_seconds, dtype=int)
    if num_seconds == 1 or rng.random() < _ALWAYS_ON:
        on[:] = 1
        return on.tolist()
    for _ in range(2 if rng.random() < _SECOND_INTERVAL else 1):
        a = int(rng.integers(0, num_seconds))
        length = int(rng.integers(1, num_seconds - a + 1))
        on[a : a + length] = 1
    return on.tolist()


def _on_screen_geometry(
    rng: np.random.Generator, cell: int, frame_size: int, difficulty: str
) -> tuple[float, tuple[float, float], tuple[float, float]]:
    size = frame_size / GRID
    row, col = divmod(cell, GRID)
    radius = size * rng.uniform(*_RADIUS[difficulty])
    jitter = rng.uniform(-_DRIFT, _DRIFT, 2) * size
    motion = rng.uniform(-_DRIFT, _DRIFT, 2) * size
    start = ((col + 0.5) * size + jitter[0], (row + 0.5) * size + jitter[1])
    end = (start[0] + motion[0], start[1] + motion[1])
    return float(radius), start, end


def plan_clip(cfg: SynthConfig, rng: np.random.Generator) -> list[ObjectPlan]:
    """Sample the objects of one clip: on-screen ones first (in drawing order), then off-screen.

    Classes are distinct within a clip and at least one object sounds.
    """
    n_sec = cfg.num_seconds
    assert cfg.offscreen_prob is not None  # SynthConfig resolves it
    n_on = int(rng.integers(1, min(cfg.max_objects, cfg.num_classes) + 1))
    n_off = int(rng.random() < cfg.offscreen_prob and n_on < cfg.num_classes)
    classes = rng.choice(cfg.num_classes, n_on + n_off, replace=False)
    cells = rng.choice(GRID * GRID, n_on, replace=False)
    sounding = [bool(s) for s in rng.random(n_on) >= cfg.silent_prob] + [True] * n_off
    if not any(sounding):
        sounding[int(rng.integers(n_on))] = True
    # Distinct levels a fixed step apart, in random order over the sounding objects.
    ranks = iter(rng.permutation(sum(sounding)).tolist())
    base_db = rng.uniform(*_BASE_LEVEL_DB)
    objects = []
    for i, class_id in enumerate(classes.tolist()):
        on_screen = i < n_on
        if on_screen:
            radius, start, end = _on_screen_geometry(
                rng, int(cells[i]), cfg.frame_size, cfg.difficulty
            )
        else:
            radius, start, end = 0.0, (0.0, 0.0), (0.0, 0.0)
        audio_on = sample_audio_on(rng, n_sec) if sounding[i] else [0] * n_sec
        level = base_db - _LEVEL_STEP_DB * next(ranks) if sounding[i] else None
        objects.append(
            ObjectPlan(
                class_id=class_id,
                sounding=sounding[i],
                on_screen=on_screen,
                cell=int(cells[i]) if on_screen else None,
                radius=radius,
                start=start,
                end=end,
                audio_on=audio_on,
                level_db=level,
            )
        )
    return objects
