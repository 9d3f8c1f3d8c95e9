"""The audio member of a shard sample: 16-bit FLAC or raw 16-bit PCM, and lossless conversion.

Both codecs store the same 16-bit samples, so a clip reads back as the same waveform from either:

- ``flac`` (member ``<key>.flac``, the default): lossless, about half the size of PCM, but its
  decode is the loader's largest per-sample CPU cost;
- ``pcm`` (member ``<key>.pcm16``): little-endian int16 mono, the rate in the JSON's
  ``sample_rate``; reading it is ``numpy.frombuffer``, for loader-bound machines.

Floats are quantised once, by :func:`quantize_pcm16` (libsndfile's own mapping: x 32768, round
half to even, clip), and the FLAC encoder is given those integers, so an ingest with either codec
stores the same samples and :func:`transcode` converts between them without loss.
"""

from __future__ import annotations

import io
from typing import Any, Literal

import numpy as np
import soundfile as sf

from avpretrain.arguments import check_choice

FLAC_EXT = "flac"
PCM_EXT = "pcm16"
AudioCodec = Literal["flac", "pcm"]  # the ingest / reencode option: the keys of AUDIO_CODECS
# codec name -> member extension
AUDIO_CODECS = {"flac": FLAC_EXT, "pcm": PCM_EXT}
AUDIO_EXTS = tuple(AUDIO_CODECS.values())
_SCALE = 32768.0


def quantize_pcm16(audio: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] to int16, as libsndfile writes them: [samples] -> [samples]."""
    scaled = np.rint(np.asarray(audio, dtype=np.float64) * _SCALE)
    return np.clip(scaled, -_SCALE, _SCALE - 1).astype(np.int16)


def pcm16_to_float(samples: np.ndarray) -> np.ndarray:
    """int16 [samples] to float32 in [-1, 1) (exact: a power-of-two scale, as libsndfile)."""
    return samples.astype(np.float32) * np.float32(1.0 / _SCALE)


def encode_flac(audio: np.ndarray, sample_rate: int) -> bytes:
    """Encode mono audio losslessly as 16-bit FLAC.

    Args:
        audio: [samples] float in [-1, 1], or int16 samples (stored as they are).
        sample_rate: Hz, stored in the FLAC header.
    """
    samples = audio if audio.dtype == np.int16 else quantize_pcm16(audio)
    buf = io.BytesIO()
    sf.write(buf, samples, sample_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def flac_to_pcm16(data: bytes) -> tuple[np.ndarray, int]:
    """Decode FLAC bytes to ``([samples] int16, sample_rate)``; channels are averaged."""
    samples, rate = sf.read(io.BytesIO(data), dtype="int16")
    if samples.ndim == 2:
        samples = np.rint(samples.mean(axis=1)).astype(np.int16)
    return samples, rate


def decode_flac(data: bytes) -> tuple[np.ndarray, int]:
    """Decode FLAC bytes to ``([samples] float32, sample_rate)``; channels are averaged."""
    audio, rate = sf.read(io.BytesIO(data), dtype="float32")
    return (audio.mean(axis=1) if audio.ndim == 2 else audio), rate


def encode_pcm16(audio: np.ndarray) -> bytes:
    """Raw little-endian 16-bit PCM of mono audio ([samples] float in [-1, 1], or int16)."""
    samples = audio if audio.dtype == np.int16 else quantize_pcm16(audio)
    return samples.astype("<i2", copy=False).tobytes()


def read_pcm16(data: bytes) -> np.ndarray:
    """The int16 samples of a ``pcm16`` member, without copying: [samples].

    Raises:
        ValueError: for an empty member or an odd number of bytes (not 16-bit samples).
    """
    if len(data) == 0 or len(data) % 2:
        raise ValueError(
            f"malformed {PCM_EXT} member: {len(data)} bytes is not a whole, non-empty number "
            f"of 16-bit samples"
        )
    return np.frombuffer(data, dtype="<i2")


def audio_ext(sample: dict[str, Any]) -> str:
    """The audio member's extension in a raw sample (``flac`` or ``pcm16``).

    Raises:
        ValueError: when the sample has no audio member, or both.
    """
    present = [ext for ext in AUDIO_EXTS if ext in sample]
    if len(present) != 1:
        found = "none" if not present else " and ".join(present)
        raise ValueError(f"needs exactly one audio member ({' or '.join(AUDIO_EXTS)}), has {found}")
    return present[0]


def pcm_rate(meta: dict[str, Any]) -> int:
    """The rate of a ``pcm16`` member, from the clip's JSON ``sample_rate``.

    Raises:
        ValueError: when the JSON has no positive integer ``sample_rate``.
    """
    rate = meta.get("sample_rate")
    if not isinstance(rate, int) or isinstance(rate, bool) or rate <= 0:
        raise ValueError(f"a {PCM_EXT} member needs a positive integer sample_rate in the JSON")
    return rate


def decode_audio_int16(sample: dict[str, Any], meta: dict[str, Any]) -> tuple[np.ndarray, int]:
    """A raw sample's audio as ``([samples] int16, sample_rate)``, whichever the codec."""
    ext = audio_ext(sample)
    if ext == PCM_EXT:
        return read_pcm16(sample[ext]), pcm_rate(meta)
    return flac_to_pcm16(sample[ext])


def decode_audio(sample: dict[str, Any], meta: dict[str, Any]) -> tuple[np.ndarray, int]:
    """A raw sample's audio as ``([samples] float32, sample_rate)``, whichever the codec.

    Args:
        sample: raw members by extension (``flac`` or ``pcm16``).
        meta: the clip's JSON (``sample_rate`` is the rate of a ``pcm16`` member).
    """
    ext = audio_ext(sample)
    if ext == PCM_EXT:
        return pcm16_to_float(read_pcm16(sample[ext])), pcm_rate(meta)
    return decode_flac(sample[ext])


def encode_audio(
    audio: np.ndarray, sample_rate: int, codec: AudioCodec = "flac"
) -> tuple[str, bytes]:
    """Encode mono audio with ``codec`` (``flac`` or ``pcm``): ``(member extension, bytes)``.

    Args:
        audio: [samples] float in [-1, 1], or int16 samples.
        sample_rate: Hz (stored in the FLAC header; a PCM member's rate is the JSON's).
        codec: ``flac`` or ``pcm``.
    """
    check_choice("audio codec", codec, AudioCodec)
    if codec == "pcm":
        return PCM_EXT, encode_pcm16(audio)
    return FLAC_EXT, encode_flac(audio, sample_rate)
