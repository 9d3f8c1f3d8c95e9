"""The hard world's nuisance property: colour and pitch say (almost) nothing about the class, while
shape-and-texture and timbre-and-envelope still name it.

Each claim is measured, not assumed: a nearest-centroid classifier (fit on one half of the
objects, scored on the other) reads one cue of every object, in the hard world and, as the
control that shows the classifier can find a cue that is there, in the easy world.
"""

from __future__ import annotations

import numpy as np
import pytest

from avpretrain.data.synthetic.classes import (
    HARD_MAX_CLASSES,
    SHAPES,
    class_spec,
    class_table,
)
from avpretrain.data.synthetic.clip import render_clip
from avpretrain.data.synthetic.config import SynthConfig

NUM_CLASSES = 8
CHANCE = 1 / NUM_CLASSES
_SR = 16000
_LOG_BINS_PER_OCTAVE = 12
_LOW_HZ = 50.0


def _world(difficulty: str, clips: int = 240) -> list:
    cfg = SynthConfig(
        clips=clips,
        num_classes=NUM_CLASSES,
        clip_seconds=1.0,
        num_frames=1,
        frame_size=96,
        sample_rate=_SR,
        max_objects=3,
        difficulty=difficulty,
    )
    return [render_clip(cfg, "train", i) for i in range(clips)]


def nearest_centroid_accuracy(x: np.ndarray, y: np.ndarray) -> float:
    """Fit class centroids of standardised ``x`` [N, D] on even rows, score the odd rows."""
    mean, std = x[::2].mean(0), x[::2].std(0) + 1e-9
    z = (x - mean) / std
    train, test, ytr, yte = z[::2], z[1::2], y[::2], y[1::2]
    classes = np.unique(ytr)
    centroids = np.stack([train[ytr == c].mean(0) for c in classes])
    dist = ((test[:, None, :] - centroids[None]) ** 2).sum(-1)
    return float((classes[dist.argmin(1)] == yte).mean())


def _object_pixels(clip, i: int) -> tuple[np.ndarray, np.ndarray]:
    """The object's mask [h, w] and frame pixels [h, w, 3] inside its bounding box."""
    mask = clip.masks[0] == i + 1
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    return mask[box], clip.frames[0][box].astype(np.float64)


def _resize(a: np.ndarray, side: int = 12) -> np.ndarray:
    """Nearest-neighbour resize of [h, w] to [side, side] (bounding-box normalised)."""
    rows = np.minimum((np.arange(side) + 0.5) * a.shape[0] / side, a.shape[0] - 1).astype(int)
    cols = np.minimum((np.arange(side) + 0.5) * a.shape[1] / side, a.shape[1] - 1).astype(int)
    return a[rows][:, cols]


def visual_cues(clips: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per on-screen object whose shape is whole on the frame: its mean colour [N, 3], its
    shape-and-texture descriptor [N, 144] (mask times brightness relative to the object's
    brightest pixel, in its bounding box: colour-free), and its class [N]."""
    colours, shapes, labels = [], [], []
    for clip in clips:
        for i, obj in enumerate(clip.objects):
            if not obj.on_screen or (clip.masks[0] == i + 1).sum() < 30:
                continue
            mask, pixels = _object_pixels(clip, i)
            lum = pixels.mean(-1)
            colours.append(pixels[mask].mean(0))
            shapes.append(_resize(mask * lum / lum[mask].max()).ravel())
            labels.append(obj.class_id)
    return np.array(colours), np.array(shapes), np.array(labels)


def _log_spectrum(wave: np.ndarray) -> np.ndarray:
    """Power in 1/12-octave bands from 50 Hz up, dB: [bands]."""
    power = np.abs(np.fft.rfft(wave)) ** 2
    freqs = np.fft.rfftfreq(len(wave), 1 / _SR)
    keep = freqs >= _LOW_HZ
    bands = np.floor(np.log2(freqs[keep] / _LOW_HZ) * _LOG_BINS_PER_OCTAVE).astype(int)
    return 10 * np.log10(np.bincount(bands, weights=power[keep]) + 1e-9)


def audio_cues(clips: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per sounding object: the log frequency of its spectral peak [N, 1]; a pitch-free timbre
    and envelope descriptor [N, 76]: the log spectrum from its peak upwards (so a transposition
    moves nothing) and the modulation spectrum of its 10 ms RMS envelope up to 15 Hz; its class."""
    peaks, timbres, labels = [], [], []
    hop = _SR // 100
    for clip in clips:
        for j, i in enumerate(clip.source_object.tolist()):
            wave = clip.sources[j].astype(np.float64)
            spectrum = _log_spectrum(wave)
            peak = int(spectrum.argmax())
            above = np.pad(spectrum[peak:], (0, 60))[:60] - spectrum[peak]
            rms = np.sqrt((wave[: len(wave) // hop * hop].reshape(-1, hop) ** 2).mean(1))
            modulation = np.abs(np.fft.rfft(rms / (rms.mean() + 1e-12)))[1:17]
            peaks.append([peak])
            timbres.append(np.concatenate([above, modulation]))
            labels.append(clip.objects[i].class_id)
    return np.array(peaks, dtype=np.float64), np.array(timbres), np.array(labels)


@pytest.fixture(scope="module")
def worlds() -> dict[str, list]:
    return {difficulty: _world(difficulty) for difficulty in ("easy", "hard")}


def test_colour_and_pitch_name_the_class_only_in_the_easy_world(worlds) -> None:
    easy_colour, _, easy_y = visual_cues(worlds["easy"])
    hard_colour, _, hard_y = visual_cues(worlds["hard"])
    assert nearest_centroid_accuracy(easy_colour, easy_y) > 0.8
    assert nearest_centroid_accuracy(hard_colour, hard_y) < CHANCE + 0.1
    easy_peak, _, easy_ay = audio_cues(worlds["easy"])
    hard_peak, _, hard_ay = audio_cues(worlds["hard"])
    assert nearest_centroid_accuracy(easy_peak, easy_ay) > 0.8
    assert nearest_centroid_accuracy(hard_peak, hard_ay) < CHANCE + 0.1
    assert min(len(hard_y), len(hard_ay)) > 150  # enough objects for the figures to mean much


def test_shape_texture_and_timbre_envelope_still_name_the_class(worlds) -> None:
    _, shapes, y = visual_cues(worlds["hard"])
    assert nearest_centroid_accuracy(shapes, y) > 0.7
    _, timbres, ay = audio_cues(worlds["hard"])
    assert nearest_centroid_accuracy(timbres, ay) > 0.7


def test_hard_classes_are_told_apart_by_look_and_by_sound_alone() -> None:
    specs = class_table(HARD_MAX_CLASSES, "hard")
    assert len({(s.shape, s.texture) for s in specs}) == HARD_MAX_CLASSES
    sounds = {
        (s.sound, s.harmonics if s.sound == "tone" else s.band_octaves, s.envelope) for s in specs
    }
    assert len(sounds) == HARD_MAX_CLASSES
    # the first eight classes (the demo's) mix tones and noises and use every shape
    first = specs[:NUM_CLASSES]
    assert {s.sound for s in first} == {"tone", "noise"}
    assert {s.shape for s in first} == set(SHAPES)
    with pytest.raises(ValueError, match="outside"):
        class_spec(HARD_MAX_CLASSES, "hard")
    with pytest.raises(ValueError, match="24 for a hard world"):
        SynthConfig(num_classes=25, difficulty="hard")


def test_instance_colour_and_pitch_reach_the_caption_and_the_sound(worlds) -> None:
    clip = next(c for c in worlds["hard"] if any(o.on_screen and o.sounding for o in c.objects))
    i = next(k for k, o in enumerate(clip.objects) if o.on_screen and o.sounding)
    spec = clip.specs[i]
    assert f"{spec.colour} {spec.shape}" in clip.caption
    mask, pixels = _object_pixels(clip, i)
    # the object's brightest pixels are its colour (brightened when marked), not the class's grey
    assert spec.colour != class_spec(spec.class_id, "hard").colour
    assert np.argmax(pixels[mask].max(0)) == np.argmax(np.asarray(spec.rgb))
