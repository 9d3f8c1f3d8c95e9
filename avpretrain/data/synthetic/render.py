"""Pixels of the synthetic world: frames, instance masks and boxes of the on-screen objects.

Rendering is vectorised per object over its bounding square only, so a 224 x 224 frame with a few
objects costs well under a millisecond. A pixel belongs to an object when its centre lies inside
the object's shape; later objects are drawn over earlier ones.
"""

from __future__ import annotations

import math

import numpy as np

from avpretrain.data.synthetic.classes import ClassSpec
from avpretrain.data.synthetic.scene import MARK_SCALE, ObjectPlan

# A marked (sounding) object's colour moves this far towards white.
_BRIGHTEN = 0.4
_TEXTURE_SHADE = 0.55
_RING_INNER = 0.55
_CROSS_HALF_WIDTH = 0.3


def shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Which points lie inside a shape centred at 0 whose bounding square is ``[-1, 1]^2``.

    Args:
        shape: one of ``synth_classes.SHAPES``.
        u: [1, W] horizontal coordinates.
        v: [H, 1] vertical coordinates (downwards).

    Returns:
        [H, W] bool.
    """
    au, av = np.abs(u), np.abs(v)
    if shape == "circle":
        return u**2 + v**2 <= 1
    if shape == "square":
        return (au <= 1) & (av <= 1)
    if shape == "triangle":
        return (v <= 1) & (au <= (v + 1) / 2)
    if shape == "ring":
        r2 = u**2 + v**2
        return (r2 <= 1) & (r2 >= _RING_INNER**2)
    if shape == "cross":
        return ((au <= _CROSS_HALF_WIDTH) & (av <= 1)) | ((av <= _CROSS_HALF_WIDTH) & (au <= 1))
    if shape == "diamond":
        return au + av <= 1
    raise ValueError(f"unknown shape {shape!r}")


def texture_shade(texture: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Brightness factor of a texture in object coordinates (so it moves with the object).

    Returns:
        [H, W] float in (0, 1].
    """
    if texture == "solid":
        return np.ones(np.broadcast_shapes(u.shape, v.shape))
    if texture == "stripes":
        dark = np.floor((u + v) * 2.5) % 2 == 1
    elif texture == "dots":
        dark = ((u * 3) % 1 - 0.5) ** 2 + ((v * 3) % 1 - 0.5) ** 2 < 0.09
    elif texture == "checks":
        dark = (np.floor(u * 2) + np.floor(v * 2)) % 2 == 1
    else:
        raise ValueError(f"unknown texture {texture!r}")
    return np.where(dark, _TEXTURE_SHADE, 1.0)


def background(rng: np.random.Generator, size: int, cluttered: bool = False) -> np.ndarray:
    """A dim, tinted backdrop with a soft gradient and mild pixel noise.

    Args:
        rng: draws the tint, gradient, pixel noise and (cluttered) grating.
        size: side of the square frame in pixels.
        cluttered: the hard world's backdrop: brighter and random in tint, with a coloured
            grating of random period and orientation and stronger pixel noise, so that a frame's
            mean colour and its texture statistics say little about the objects on it.

    Returns:
        [size, size, 3] float32.
    """
    base = rng.uniform(25, 75, 3) if not cluttered else rng.uniform(20, 140, 3)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.arange(size) + 0.5) / size - 0.5
    grad = math.cos(angle) * ramp[None, :] + math.sin(angle) * ramp[:, None]
    noise = rng.normal(0.0, 4.0 if not cluttered else 12.0, (size, size, 3))
    out = base + grad[..., None] * rng.uniform(10, 30) + noise
    if cluttered:
        period = rng.uniform(0.08, 0.5)  # of the frame side
        theta = rng.uniform(0, np.pi)
        wave = np.sin(
            2 * np.pi * (math.cos(theta) * ramp[None, :] + math.sin(theta) * ramp[:, None]) / period
            + rng.uniform(0, 2 * np.pi)
        )
        out = out + wave[..., None] * rng.uniform(-30, 30, 3)
    return out.astype(np.float32)


def object_box(cx: float, cy: float, radius: float, size: int) -> list[float]:
    """Bounding box ``[x0, y0, x1, y1]`` in pixels, clipped to the frame, rounded outwards."""
    return [
        math.floor(max(0.0, cx - radius) * 100) / 100,
        math.floor(max(0.0, cy - radius) * 100) / 100,
        math.ceil(min(float(size), cx + radius) * 100) / 100,
        math.ceil(min(float(size), cy + radius) * 100) / 100,
    ]


def _draw(
    canvas: np.ndarray,
    mask: np.ndarray,
    value: int,
    spec: ClassSpec,
    centre: tuple[float, float],
    radius: float,
    marked: bool,
) -> None:
    size = canvas.shape[0]
    cx, cy = centre
    x0, x1 = max(0, math.floor(cx - radius)), min(size, math.ceil(cx + radius))
    y0, y1 = max(0, math.floor(cy - radius)), min(size, math.ceil(cy + radius))
    u = ((np.arange(x0, x1) + 0.5 - cx) / radius)[None, :]
    v = ((np.arange(y0, y1) + 0.5 - cy) / radius)[:, None]
    inside = shape_mask(spec.shape, u, v)
    rgb = np.asarray(spec.rgb, dtype=np.float32)
    if marked:
        rgb = rgb + _BRIGHTEN * (255 - rgb)
    colour = texture_shade(spec.texture, u, v)[..., None] * rgb
    canvas[y0:y1, x0:x1][inside] = colour[inside]
    mask[y0:y1, x0:x1][inside] = value


def render_frames(
    objects: list[ObjectPlan],
    specs: list[ClassSpec],
    frame_times: list[float],
    clip_seconds: float,
    size: int,
    rng: np.random.Generator,
    cluttered: bool = False,
) -> tuple[np.ndarray, np.ndarray, list[list[list[float]] | None]]:
    """Draw every frame of a clip.

    Args:
        objects: the clip's plan; off-screen objects are skipped.
        specs: look of each object (its class's, or its instance's in the hard world).
        frame_times: seconds from the clip start.
        clip_seconds: clip length; objects move from their start to their end point over it.
        size: side of the square frames in pixels.
        rng: draws the backdrop (:func:`background`).
        cluttered: draw the hard world's backdrop (:func:`background`).

    Returns:
        frames [F, H, W, 3] uint8; masks [F, H, W] uint8 (object index + 1, 0 background);
        per object, its per-frame boxes ``[x0, y0, x1, y1]`` or None off-screen.
    """
    backdrop = background(rng, size, cluttered)
    frames = np.empty((len(frame_times), size, size, 3), dtype=np.uint8)
    masks = np.zeros((len(frame_times), size, size), dtype=np.uint8)
    boxes: list[list[list[float]] | None] = [[] if o.on_screen else None for o in objects]
    for f, t in enumerate(frame_times):
        canvas = backdrop.copy()
        for i, (obj, spec) in enumerate(zip(objects, specs, strict=True)):
            if not obj.on_screen:
                continue
            marked = obj.marked(t)
            radius = obj.radius * (MARK_SCALE if marked else 1.0)
            centre = obj.centre(t, clip_seconds)
            _draw(canvas, masks[f], i + 1, spec, centre, radius, marked)
            box_list = boxes[i]
            assert box_list is not None  # on screen
            box_list.append(object_box(*centre, radius, size))
        frames[f] = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    return frames, masks, boxes
