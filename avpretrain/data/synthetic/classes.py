"""Object classes of the synthetic world: each has a look and a sound that belong together.

A class is seen as a coloured, textured shape and heard as a tone (fundamental pitch, harmonic
timbre, envelope) or a band of noise. Two difficulties:

- ``easy``: every class differs from every other in shape-and-colour (or texture) and in pitch,
  so a class shows in the mean colour and the spectral peak, cues a random encoder exposes.
- ``hard`` (the default world): colour and pitch are drawn per instance, independently of the
  class (:func:`instance_spec`), so they are nuisance. A class is seen only through its shape and
  texture and heard only through its timbre (or noise band width) and envelope; what the two
  modalities share is the class, which is what audio-visual pretraining has to find.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, cast

import numpy as np

from avpretrain.arguments import check_choice

Difficulty = Literal["easy", "hard"]

SHAPES = ("circle", "square", "triangle", "ring", "cross", "diamond")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (50, 90, 230),
    "yellow": (230, 210, 40),
    "magenta": (210, 50, 200),
    "cyan": (40, 200, 210),
    "orange": (240, 130, 30),
    "white": (235, 235, 235),
}
TEXTURES = ("solid", "stripes", "dots")
ENVELOPES = ("steady", "pulsed", "decaying")
# Relative amplitudes of harmonics 1, 2, 3, ...: soft, bright, hollow (odd harmonics only).
TIMBRES: tuple[tuple[float, ...], ...] = (
    (1.0, 0.3),
    (1.0, 0.6, 0.45, 0.3, 0.2),
    (1.0, 0.0, 0.5, 0.0, 0.3),
)
# The hard world adds a fourth texture, a fourth envelope (a slow 1 Hz swell), a reedy timbre and
# a second noise band width, so that (shape, texture) and (sound, timbre or band, envelope) each
# name a class on their own.
HARD_TEXTURES = (*TEXTURES, "checks")
HARD_ENVELOPES = (*ENVELOPES, "swell")
HARD_TIMBRES: tuple[tuple[float, ...], ...] = (
    *TIMBRES,
    (1.0, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.25),
)
# Noise band widths in octaves: a narrow hiss and a broad rush.
BAND_OCTAVES = (0.5, 2.0)
HARD_MAX_CLASSES = len(SHAPES) * len(HARD_TEXTURES)
# Per-instance pitch of the hard world, log-uniform over one range for tones' fundamentals and
# noise bands' centres alike, so that not even the sound's kind shows in the spectral peak.
HARD_PITCH_HZ = (150.0, 1000.0)
_RGB_JITTER = 20.0
# Per-instance spread of the hard world's sounds: envelope tempo and each harmonic's amplitude
# are scaled by factors log-uniform in [1 / x, x].
_RATE_SPREAD = 1.3
_HARMONIC_SPREAD = 1.4
_BASE_NAMES = (
    "bell", "flute", "drum", "fan", "chime", "horn", "gong", "kettle",
    "whistle", "organ", "rattle", "engine", "harp", "cello", "clock", "wind",
    "buzzer", "tuba", "cricket", "rain", "siren", "piccolo", "owl", "stream",
)  # fmt: skip
# (shape, colour) pairs repeat after lcm(6, 8) = 24 classes; texture tells the next 24 apart.
_PAIRS = 24
MAX_CLASSES = _PAIRS * len(TEXTURES)
CLASS_NAMES: tuple[str, ...] = tuple(
    _BASE_NAMES[c % _PAIRS] + ("" if c < _PAIRS else f" {c // _PAIRS + 1}")
    for c in range(MAX_CLASSES)
)
_TEXTURE_WORDS = {"solid": "", "stripes": "striped", "dots": "dotted"}
_GOLDEN = 0.6180339887498949
_LOW_PITCH = 150.0
_PITCH_OCTAVES = 3.0


@dataclass(frozen=True)
class ClassSpec:
    """Look and sound of one class.

    Attributes:
        class_id: index in ``0 .. MAX_CLASSES - 1``.
        name: class name (also an answer word).
        shape, colour, texture: the look; ``rgb`` is the colour's value.
        sound: ``"tone"`` (harmonic) or ``"noise"`` (band-limited noise).
        pitch: Hz, the fundamental of a tone or the centre of a noise band.
        harmonics: relative amplitudes of harmonics 1, 2, ... of a tone.
        envelope: ``"steady"``, ``"pulsed"`` (4 Hz), ``"decaying"`` (re-struck twice a second)
            or ``"swell"`` (1 Hz, hard world only).
        band_octaves: width of a noise band in octaves (log-symmetric around ``pitch``).
        rate: tempo factor of the envelope (1 for a class; drawn per instance in the hard world).
    """

    class_id: int
    name: str
    shape: str
    colour: str
    rgb: tuple[int, int, int]
    texture: str
    sound: str
    pitch: float
    harmonics: tuple[float, ...]
    envelope: str
    band_octaves: float = BAND_OCTAVES[0]
    rate: float = 1.0

    @property
    def description(self) -> str:
        """How the object looks, in words: ``"striped red circle"``."""
        return " ".join(w for w in (_TEXTURE_WORDS[self.texture], self.colour, self.shape) if w)


def max_classes(difficulty: Difficulty = "easy") -> int:
    """Number of distinct classes a world of ``difficulty`` offers."""
    check_choice("difficulty", difficulty, Difficulty)
    return MAX_CLASSES if difficulty == "easy" else HARD_MAX_CLASSES


# The hard world's sounds: every (tone timbre, envelope) and (noise band, envelope) pair, visited
# with a stride coprime to their number so that any prefix of classes mixes tones and noises.
_HARD_SOUNDS = [("tone", t, e) for t in range(len(HARD_TIMBRES)) for e in HARD_ENVELOPES] + [
    ("noise", b, e) for b in range(len(BAND_OCTAVES)) for e in HARD_ENVELOPES
]
_HARD_SOUND_STRIDE = 7


def _hard_class_spec(class_id: int) -> ClassSpec:
    sound, kind, envelope = _HARD_SOUNDS[(class_id * _HARD_SOUND_STRIDE) % len(_HARD_SOUNDS)]
    lo, hi = HARD_PITCH_HZ
    return ClassSpec(
        class_id=class_id,
        name=CLASS_NAMES[class_id],
        shape=SHAPES[class_id % len(SHAPES)],
        # colour and pitch are per instance (instance_spec); the class keeps neutral values
        colour="grey",
        rgb=(128, 128, 128),
        texture=HARD_TEXTURES[class_id // len(SHAPES)],
        sound=sound,
        pitch=round(float(np.sqrt(lo * hi)), 2),
        harmonics=HARD_TIMBRES[kind] if sound == "tone" else (1.0,),
        envelope=envelope,
        band_octaves=BAND_OCTAVES[kind] if sound == "noise" else BAND_OCTAVES[0],
    )


def instance_spec(spec: ClassSpec, rng: np.random.Generator) -> ClassSpec:
    """One object of a hard-world class: colour and pitch drawn independently of the class.

    The colour is a palette colour (so captions can name it) with a small RGB jitter; the pitch is
    log-uniform over the range shared by all classes, tones and noise bands alike. The envelope's
    tempo and the harmonics' amplitudes vary a little around the class's, so a class is a
    family of sounds rather than one waveform.
    """
    colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
    rgb = np.clip(np.asarray(COLOURS[colour]) + rng.uniform(-_RGB_JITTER, _RGB_JITTER, 3), 0, 255)
    lo, hi = HARD_PITCH_HZ
    pitch = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))

    def spread(x: float, n: int | None = None) -> np.ndarray:
        return np.exp(rng.uniform(-np.log(x), np.log(x), n))

    harmonics = np.asarray(spec.harmonics) * spread(_HARMONIC_SPREAD, len(spec.harmonics))
    # the fundamental stays the reference (and the spectral peak)
    harmonics = np.concatenate([[1.0], np.minimum(harmonics[1:], 0.95)])
    return replace(
        spec,
        colour=colour,
        rgb=cast("tuple[int, int, int]", tuple(int(round(c)) for c in rgb)),
        pitch=round(pitch, 2),
        harmonics=tuple(round(float(h), 4) for h in harmonics),
        rate=round(float(spread(_RATE_SPREAD)), 4),
    )


def class_spec(class_id: int, difficulty: Difficulty = "easy") -> ClassSpec:
    """The deterministic look and sound of class ``class_id`` in a world of ``difficulty``."""
    top = max_classes(difficulty)
    if not 0 <= class_id < top:
        raise ValueError(f"class id {class_id} outside 0..{top - 1}")
    if difficulty == "hard":
        return _hard_class_spec(class_id)
    colour = list(COLOURS)[class_id % len(COLOURS)]
    # Golden-ratio steps spread pitches over three octaves so that any prefix of classes is
    # well separated, whatever num_classes is.
    frac = (class_id * _GOLDEN) % 1.0
    return ClassSpec(
        class_id=class_id,
        name=CLASS_NAMES[class_id],
        shape=SHAPES[class_id % len(SHAPES)],
        colour=colour,
        rgb=COLOURS[colour],
        texture=TEXTURES[class_id // _PAIRS],
        sound="noise" if class_id % 4 == 3 else "tone",
        pitch=round(_LOW_PITCH * 2.0 ** (_PITCH_OCTAVES * frac), 2),
        harmonics=TIMBRES[(class_id // 3) % len(TIMBRES)],
        envelope=ENVELOPES[class_id % len(ENVELOPES)],
    )


def class_table(num_classes: int, difficulty: Difficulty = "easy") -> list[ClassSpec]:
    """Specs of classes ``0 .. num_classes - 1``."""
    return [class_spec(c, difficulty) for c in range(num_classes)]
