"""Degradations of known severity and a MOS model: the ground truth of the synthetic quality world.

Every degradation takes a severity in [0, 1]: 0 returns the input unchanged (a copy), and a
larger severity degrades more (lower PSNR / SNR against the clean signal; the tests check it).
Severity maps to a physical parameter as follows (constants below):

=============  ==============================================================================
video
blur           Gaussian, spatial sigma = 4 px x s
exposure       over-exposure: gain (1 + s) on ``x ** (1 / (1 + 2 s))``; ``darken=True`` gives
               the mirror, ``x ** (1 + 2 s) / (1 + s)`` (x in [0, 1])
video_noise    additive Gaussian, std = 40 grey levels x s
jpeg           JPEG re-encoding (Pillow) at quality round(90 - 85 s): 90 just above 0, 5 at 1
stutter        each frame held for 1 + round(4 s) frames (1 = fluent, 5 = badly stuttering)
audio
audio_noise    additive white Gaussian noise at SNR = 40 dB x (1 - s) (0 dB at s = 1)
clipping       hard clipping at (1 - 0.95 s) x the peak amplitude
bandlimit      zero-phase 8th-order Butterworth low-pass, cutoff from 0.9 x Nyquist (s -> 0)
               down to 250 Hz (s = 1), geometric in s
=============  ==============================================================================

:func:`mos_model` turns severities into opinion scores on 0-100, deterministically:

- each modality's score is a product of per-degradation factors,
  ``video = 100 * prod_k (1 - w_k s_k)`` with weights ``VIDEO_WEIGHTS`` (``AUDIO_WEIGHTS`` for
  audio): w_k is the largest share of quality one degradation can take, and each further
  impairment takes its share of what quality is left (they compound, never below 0);
- ``overall = 0.55 video + 0.25 audio + 0.20 video * audio / 100``, the additive-plus-product
  form of the audio-visual fusion models (ITU-T P.911 / P.1201 practice), with the video term
  weighted more, as audio-visual quality studies find for most content; a clean clip scores
  100. Its slope is 0.55-0.75 in ``video`` and 0.25-0.45 in ``audio``.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np
from PIL import Image
from scipy import ndimage, signal

MAX_BLUR_SIGMA = 4.0
MAX_NOISE_STD = 40.0
JPEG_QUALITY = (90, 5)  # at severity -> 0 and at 1
MAX_HOLD = 5
MAX_SNR_DB = 40.0
MIN_CLIP_FRACTION = 0.05
CUTOFF_LOWEST_HZ = 250.0
CUTOFF_HIGHEST = 0.9  # of Nyquist
FILTER_ORDER = 8

VIDEO_WEIGHTS = {"blur": 0.6, "exposure": 0.4, "video_noise": 0.5, "jpeg": 0.6, "stutter": 0.4}
AUDIO_WEIGHTS = {"audio_noise": 0.6, "clipping": 0.5, "bandlimit": 0.4}
AV_FUSION = (0.55, 0.25, 0.20)  # video, audio, video x audio / 100


def _check_severity(severity: float, name: str = "severity") -> float:
    s = float(severity)
    if not (math.isfinite(s) and 0.0 <= s <= 1.0):
        raise ValueError(f"{name} must be in [0, 1], got {severity!r}")
    return s


def _check_frames(frames: np.ndarray) -> np.ndarray:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        raise ValueError(f"frames: expected a uint8 numpy array, got {type(frames).__name__}")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames: expected [F, H, W, 3], got {frames.shape}")
    return frames


def _check_audio(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.ndim != 1 or not np.issubdtype(audio.dtype, np.floating):
        raise ValueError(f"audio: expected float [samples], got {audio.dtype} {audio.shape}")
    return audio


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def blur(frames: np.ndarray, severity: float) -> np.ndarray:
    """Gaussian blur of every frame, sigma ``MAX_BLUR_SIGMA * severity`` pixels.

    Args:
        frames: [F, H, W, 3] uint8.
        severity: in [0, 1].

    Returns:
        [F, H, W, 3] uint8.
    """
    frames, s = _check_frames(frames), _check_severity(severity)
    if s == 0:
        return frames.copy()
    sigma = MAX_BLUR_SIGMA * s
    # no blur across frames or colour channels
    out = ndimage.gaussian_filter(frames.astype(np.float32), sigma=(0, sigma, sigma, 0))
    return _to_uint8(out)


def exposure(frames: np.ndarray, severity: float, darken: bool = False) -> np.ndarray:
    """Over- (or under-) exposure: gain and gamma together.

    Each pixel moves monotonically away from its value as the severity grows, so the error
    never shrinks.

    Args:
        frames: [F, H, W, 3] uint8.
        severity: in [0, 1].
        darken: under-expose instead.

    Returns:
        [F, H, W, 3] uint8.
    """
    frames, s = _check_frames(frames), _check_severity(severity)
    if s == 0:
        return frames.copy()
    x = frames.astype(np.float64) / 255.0
    gain, gamma = 1.0 + s, 1.0 + 2.0 * s
    y = x**gamma / gain if darken else gain * x ** (1.0 / gamma)
    return _to_uint8(255.0 * y)


def video_noise(frames: np.ndarray, severity: float, seed: int = 0) -> np.ndarray:
    """Additive Gaussian noise, std ``MAX_NOISE_STD * severity`` grey levels.

    One standard-normal draw per seed is scaled by the severity, so at a fixed seed the noise
    of a higher severity is the same pattern, only stronger.

    Args:
        frames: [F, H, W, 3] uint8.
        severity: in [0, 1].
        seed: noise pattern.

    Returns:
        [F, H, W, 3] uint8.
    """
    frames, s = _check_frames(frames), _check_severity(severity)
    if s == 0:
        return frames.copy()
    noise = np.random.default_rng(seed).standard_normal(frames.shape, dtype=np.float32)
    return _to_uint8(frames + MAX_NOISE_STD * s * noise)


def jpeg_quality(severity: float) -> int:
    """The JPEG quality factor used at ``severity`` (> 0)."""
    s = _check_severity(severity)
    return int(round(JPEG_QUALITY[0] + (JPEG_QUALITY[1] - JPEG_QUALITY[0]) * s))


def jpeg(frames: np.ndarray, severity: float) -> np.ndarray:
    """Re-encode every frame as JPEG at quality :func:`jpeg_quality` (Pillow, 4:2:0).

    Args:
        frames: [F, H, W, 3] uint8.
        severity: in [0, 1].

    Returns:
        [F, H, W, 3] uint8.
    """
    frames, s = _check_frames(frames), _check_severity(severity)
    if s == 0:
        return frames.copy()
    quality = jpeg_quality(s)
    out = np.empty_like(frames)
    for i, frame in enumerate(frames):
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="JPEG", quality=quality)
        out[i] = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return out


def stutter(frames: np.ndarray, severity: float) -> np.ndarray:
    """Frames held (repeated) for ``1 + round((MAX_HOLD - 1) * severity)`` frames each.

    Frame ``i`` shows frame ``hold * (i // hold)``: the clip keeps its length but moves in
    jumps. A single-frame clip cannot stutter.

    Args:
        frames: [F, H, W, 3] uint8.
        severity: in [0, 1].

    Returns:
        [F, H, W, 3] uint8.
    """
    frames, s = _check_frames(frames), _check_severity(severity)
    hold = 1 + int(round((MAX_HOLD - 1) * s))
    index = (np.arange(len(frames)) // hold) * hold
    return frames[index].copy()


def audio_noise(audio: np.ndarray, severity: float, seed: int = 0) -> np.ndarray:
    """Additive white Gaussian noise at SNR ``MAX_SNR_DB * (1 - severity)`` dB.

    The noise is scaled to the signal's mean power, so the SNR is exact.

    Args:
        audio: [samples] float.
        severity: in [0, 1].
        seed: noise pattern.

    Returns:
        [samples] float, same dtype.
    """
    audio, s = _check_audio(audio), _check_severity(severity)
    power = float(np.mean(audio.astype(np.float64) ** 2))
    if s == 0 or power == 0:
        return audio.copy()
    noise = np.random.default_rng(seed).standard_normal(audio.shape)
    snr_db = MAX_SNR_DB * (1.0 - s)
    noise *= math.sqrt(power / 10 ** (snr_db / 10) / np.mean(noise**2))
    return (audio + noise).astype(audio.dtype)


def clipping(audio: np.ndarray, severity: float) -> np.ndarray:
    """Hard clipping at ``(1 - (1 - MIN_CLIP_FRACTION) * severity)`` times the peak.

    Args:
        audio: [samples] float.
        severity: in [0, 1].

    Returns:
        [samples] float, same dtype.
    """
    audio, s = _check_audio(audio), _check_severity(severity)
    limit = float(np.max(np.abs(audio), initial=0.0)) * (1.0 - (1.0 - MIN_CLIP_FRACTION) * s)
    return np.clip(audio, -limit, limit).astype(audio.dtype)


def bandlimit_cutoff(severity: float, sample_rate: int) -> float:
    """Low-pass cutoff in Hz at ``severity`` (> 0): geometric from 0.9 x Nyquist to 250 Hz."""
    s = _check_severity(severity)
    high = CUTOFF_HIGHEST * sample_rate / 2
    low = min(CUTOFF_LOWEST_HZ, high)
    return high * (low / high) ** s


def bandlimit(audio: np.ndarray, severity: float, sample_rate: int = 16_000) -> np.ndarray:
    """Zero-phase Butterworth low-pass at :func:`bandlimit_cutoff` (a muffled recording).

    Args:
        audio: [samples] float, at least 64 samples.
        severity: in [0, 1].
        sample_rate: Hz.

    Returns:
        [samples] float, same dtype.
    """
    audio, s = _check_audio(audio), _check_severity(severity)
    if s == 0:
        return audio.copy()
    if audio.size < 64:
        raise ValueError(f"audio: band-limiting needs at least 64 samples, got {audio.size}")
    sos = signal.butter(
        FILTER_ORDER, bandlimit_cutoff(s, sample_rate), fs=sample_rate, output="sos"
    )
    return signal.sosfiltfilt(sos, audio.astype(np.float64)).astype(audio.dtype)


@dataclass(frozen=True)
class Severity:
    """Severities in [0, 1] of every degradation of one clip (0 = clean)."""

    blur: float = 0.0
    exposure: float = 0.0
    video_noise: float = 0.0
    jpeg: float = 0.0
    stutter: float = 0.0
    audio_noise: float = 0.0
    clipping: float = 0.0
    bandlimit: float = 0.0
    darken: bool = False  # exposure direction; does not change the MOS

    VIDEO: ClassVar[tuple[str, ...]] = tuple(VIDEO_WEIGHTS)
    AUDIO: ClassVar[tuple[str, ...]] = tuple(AUDIO_WEIGHTS)

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name != "darken":
                _check_severity(getattr(self, f.name), f.name)


def degrade_video(frames: np.ndarray, severity: Severity, seed: int = 0) -> np.ndarray:
    """Apply the video degradations in capture-to-playback order.

    Exposure and blur (capture), sensor noise, JPEG (compression), stutter (playback).

    Args:
        frames: [F, H, W, 3] uint8.
        severity: the clip's severities.
        seed: noise pattern.

    Returns:
        [F, H, W, 3] uint8.
    """
    out = exposure(frames, severity.exposure, severity.darken)
    out = blur(out, severity.blur)
    out = video_noise(out, severity.video_noise, seed)
    out = jpeg(out, severity.jpeg)
    return stutter(out, severity.stutter)


def degrade_audio(
    audio: np.ndarray, severity: Severity, sample_rate: int = 16_000, seed: int = 0
) -> np.ndarray:
    """Apply the audio degradations: band-limit (microphone), noise, then clipping (ADC).

    Args:
        audio: [samples] float.
        severity: the clip's severities.
        sample_rate: Hz.
        seed: noise pattern.

    Returns:
        [samples] float.
    """
    out = bandlimit(audio, severity.bandlimit, sample_rate)
    out = audio_noise(out, severity.audio_noise, seed)
    return clipping(out, severity.clipping)


def mos_model(severity: Severity) -> dict[str, float]:
    """Ground-truth opinion scores (0-100) of a clip with these severities (module docstring).

    Returns:
        ``{"overall", "video", "audio"}``; each strictly decreases as any severity that feeds
        it grows (``overall`` in every severity).
    """
    video = 100.0 * math.prod(1.0 - w * getattr(severity, k) for k, w in VIDEO_WEIGHTS.items())
    audio = 100.0 * math.prod(1.0 - w * getattr(severity, k) for k, w in AUDIO_WEIGHTS.items())
    wv, wa, wva = AV_FUSION
    overall = wv * video + wa * audio + wva * video * audio / 100.0
    return {"overall": overall, "video": video, "audio": audio}
