"""Object classes of the synthetic world: each has a look and a sound that belong together.

A class is seen as a coloured, textured shape and heard as a tone (fundamental pitch, harmonic
timbre, envelope) or a band of noise. Every class differs from every other in shape-and-colour
(or texture) and in pitch, so a class can be told from one frame alone and from audio alone, and
both modalities carry the same semantics, as in real clips.
"""

from __future__ import annotations

from dataclasses import dataclass

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
        envelope: ``"steady"``, ``"pulsed"`` (4 Hz) or ``"decaying"`` (re-struck twice a second).
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

    @property
    def description(self) -> str:
        """How the object looks, in words: ``"striped red circle"``."""
        return " ".join(w for w in (_TEXTURE_WORDS[self.texture], self.colour, self.shape) if w)


def class_spec(class_id: int) -> ClassSpec:
    """The deterministic look and sound of class ``class_id``."""
    if not 0 <= class_id < MAX_CLASSES:
        raise ValueError(f"class id {class_id} outside 0..{MAX_CLASSES - 1}")
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


def class_table(num_classes: int) -> list[ClassSpec]:
    """Specs of classes ``0 .. num_classes - 1``."""
    return [class_spec(c) for c in range(num_classes)]
