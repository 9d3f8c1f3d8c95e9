"""Sounds of the synthetic world: class waveforms, per-second gating and the mixture."""

from __future__ import annotations

import numpy as np

from avpretrain.data.synthetic.classes import ClassSpec

# Mixture peak after scaling: below full scale, so 16-bit FLAC never clips.
PEAK = 0.9
# Fade in/out at the edges of each sounding interval, so gating makes no clicks.
RAMP_SECONDS = 0.01
_PULSE_HZ = 4.0
_SWELL_HZ = 1.0
_STRIKE_PERIOD = 0.5
_DECAY_SECONDS = 0.12
_ATTACK_SECONDS = 0.003


def envelope(kind: str, t: np.ndarray, rate: float = 1.0) -> np.ndarray:
    """Amplitude envelope at times ``t`` (seconds from the clip start).

    Args:
        kind: ``"steady"``, ``"pulsed"``, ``"decaying"`` or ``"swell"``.
        t: [samples] float.
        rate: tempo factor: pulses, strikes and swells come ``rate`` times as often.
    """
    if kind == "steady":
        return np.ones_like(t)
    if kind == "pulsed":
        return 0.5 * (1.0 - np.cos(2 * np.pi * _PULSE_HZ * rate * t))
    if kind == "decaying":
        phase = t % (_STRIKE_PERIOD / rate)
        return np.minimum(1.0, phase / _ATTACK_SECONDS) * np.exp(-phase / _DECAY_SECONDS)
    if kind == "swell":
        return 0.5 * (1.0 - np.cos(2 * np.pi * _SWELL_HZ * rate * t))
    raise ValueError(f"unknown envelope {kind!r}")


def class_waveform(
    spec: ClassSpec, num_samples: int, sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """The sound of one class over a whole clip, at unit RMS.

    Random phases (tones) or noise (noise bands) vary between clips; pitch (a band's centre),
    timbre (a band's width) and envelope are the spec's own.

    Returns:
        [samples] float64.
    """
    t = np.arange(num_samples) / sample_rate
    if spec.sound == "tone":
        phases = rng.uniform(0, 2 * np.pi, len(spec.harmonics))
        wave = np.zeros(num_samples)
        for k, (amp, phase) in enumerate(zip(spec.harmonics, phases, strict=True), start=1):
            # Harmonics near Nyquist would alias into other classes' pitch range.
            if amp > 0 and k * spec.pitch < 0.45 * sample_rate:
                wave += amp * np.sin(2 * np.pi * k * spec.pitch * t + phase)
    elif spec.sound == "noise":
        spectrum = np.fft.rfft(rng.standard_normal(num_samples))
        freqs = np.fft.rfftfreq(num_samples, 1.0 / sample_rate)
        half = 2.0 ** (spec.band_octaves / 2)
        lo, hi = spec.pitch / half, spec.pitch * half
        spectrum[(freqs < lo) | (freqs > hi)] = 0
        wave = np.fft.irfft(spectrum, num_samples)
    else:
        raise ValueError(f"unknown sound kind {spec.sound!r}")
    wave *= envelope(spec.envelope, t, spec.rate)
    return wave / max(float(np.sqrt(np.mean(wave**2))), 1e-12)


def gate(audio_on: list[int], num_samples: int, sample_rate: int) -> np.ndarray:
    """Sample-level on/off gain from per-second flags, with short fades inside on-intervals.

    Off seconds are exactly zero, so per-second energy tells the flags back.

    Returns:
        [samples] float64 in [0, 1].
    """
    flags = np.asarray(audio_on, dtype=np.int8)
    g = np.repeat(flags.astype(np.float64), sample_rate)[:num_samples]
    edges = np.diff(np.concatenate([[0], flags, [0]]))
    starts = np.flatnonzero(edges == 1) * sample_rate
    ends = np.minimum(np.flatnonzero(edges == -1) * sample_rate, num_samples)
    for a, b in zip(starts, ends, strict=True):
        r = min(round(RAMP_SECONDS * sample_rate), (b - a) // 2)
        if r > 0:
            fade = np.linspace(0.0, 1.0, r, endpoint=False)
            g[a : a + r] *= fade
            g[b - r : b] *= fade[::-1]
    return g


def render_sources(
    specs: list[ClassSpec],
    audio_on: list[list[int]],
    levels_db: list[float],
    num_samples: int,
    sample_rate: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Isolated sources of the sounding objects and their mixture.

    Each source is gated by its per-second flags and set to its level (RMS over its on-time);
    one peak-safe gain then scales sources and mixture alike, so the sources still sum to it.

    Args:
        specs: class of each sounding object.
        audio_on: per object, per-second 0/1 flags.
        levels_db: per object, RMS level in dB full scale while on.
        num_samples: length of every output waveform.
        sample_rate: Hz.
        rng: draws the random phases and noise of the sources.

    Returns:
        sources [S, samples] float32, mixture [samples] float32, loudness per source (final RMS
        over its on-time).
    """
    sources = np.zeros((len(specs), num_samples))
    on_samples = []
    for i, (spec, on, level) in enumerate(zip(specs, audio_on, levels_db, strict=True)):
        g = gate(on, num_samples, sample_rate)
        on_samples.append(max(np.count_nonzero(g), 1))
        wave = class_waveform(spec, num_samples, sample_rate, rng) * g
        rms_on = np.sqrt(np.sum(wave**2) / on_samples[-1])
        sources[i] = wave * (10.0 ** (level / 20.0) / max(rms_on, 1e-12))
    mixture = sources.sum(axis=0)
    peak = float(np.abs(mixture).max(initial=0.0))
    scale = min(1.0, PEAK / peak) if peak > 0 else 1.0
    sources = (sources * scale).astype(np.float32)
    mixture = sources.sum(axis=0, dtype=np.float64).astype(np.float32)
    loudness = [
        float(np.sqrt(np.sum(s.astype(np.float64) ** 2) / n))
        for s, n in zip(sources, on_samples, strict=True)
    ]
    return sources, mixture, loudness
