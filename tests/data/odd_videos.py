"""Test videos whose timestamps are set packet by packet (PyAV muxing raw packets), and an
audio file with a cover picture.

Video is Motion JPEG (every packet a JPEG, so the frame size may change between packets), audio is
16-bit PCM (every packet exactly placed); both carry exactly the presentation times asked for. So
these files can have audio packet gaps, a video track that starts late, a rotation in the display
matrix, several audio streams and a mid-stream resolution change.

Frames are ``colour_at(t)`` with the left half ``LEFT`` (to see the orientation); audio stream ``k``
is a 440 Hz tone of amplitude ``stream_amplitude(k)`` throughout.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from tests.data.videos import TONE_HZ, colour_at

LEFT = (255, 0, 255)
RATE = 16000
_MS = Fraction(1, 1000)


def stream_amplitude(k: int) -> float:
    """Amplitude of the tone of audio stream ``k``."""
    return 0.2 * (k + 1)


def _jpeg(t: float, size: tuple[int, int]) -> bytes:
    width, height = size
    image = np.empty((height, width, 3), np.uint8)
    image[:] = colour_at(t)
    image[:, : width // 2] = LEFT
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _pcm(start: int, count: int, amplitude: float) -> bytes:
    t = (start + np.arange(count)) / RATE
    return (amplitude * np.sin(2 * np.pi * TONE_HZ * t) * 32767).astype("<i2").tobytes()


def write_timed(
    path: str | Path,
    frame_times: Sequence[float],
    audio_spans: Sequence[tuple[float, float]] = (),
    audio_streams: int = 1,
    default_audio: int | None = None,
    rotation: int = 0,
    rotate_tag: str | None = None,
    size_at: Callable[[float], tuple[int, int]] = lambda t: (64, 48),
    block: int = 1600,
) -> Path:
    """Write a ``.mkv`` test video.

    Args:
        path: output file.
        frame_times: presentation time of every video frame, seconds.
        audio_spans: (start, end) seconds covered by audio packets; nothing between them.
        audio_streams: number of audio streams (each with every span).
        default_audio: the audio stream marked default (None: none is).
        rotation: display matrix rotation, counter-clockwise degrees.
        rotate_tag: a ``rotate`` tag in the video stream's metadata (clockwise degrees).
        size_at: (width, height) of the frame at time t.
        block: samples per audio packet (a whole number of milliseconds).
    """
    path = Path(path)
    packets = []
    with av.open(str(path), "w") as container:
        video = container.add_stream("mjpeg", rate=10)
        video.width, video.height = size_at(frame_times[0])
        video.pix_fmt = "yuvj420p"
        video.time_base = _MS
        if rotation:
            video.set_display_rotation(rotation)
        if rotate_tag is not None:
            video.metadata["rotate"] = rotate_tag
        for t in frame_times:
            packets.append((t, 0, video, _jpeg(t, size_at(t)), round(t * 1000), 100))
        for k in range(audio_streams):
            audio = container.add_stream("pcm_s16le", rate=RATE)
            audio.layout = "mono"
            audio.time_base = _MS  # Matroska keeps milliseconds
            default = av.stream.Disposition.default
            audio.disposition = default if k == default_audio else av.stream.Disposition(0)
            for lo, hi in audio_spans:
                for start in range(round(lo * RATE), round(hi * RATE), block):
                    count = min(block, round(hi * RATE) - start)
                    data = _pcm(start, count, stream_amplitude(k))
                    ms = (round(start * 1000 / RATE), round(count * 1000 / RATE))
                    packets.append((start / RATE, 1 + k, audio, data, *ms))
        for _, _, stream, data, pts, duration in sorted(packets, key=lambda p: p[:2]):
            packet = av.Packet(data)
            packet.stream = stream
            packet.time_base = stream.time_base
            packet.pts = packet.dts = pts
            packet.duration = duration
            container.mux(packet)
    return path


def write_cover_only(path: str | Path, seconds: float = 2.0) -> Path:
    """An ``.mp4`` audio file whose only video stream is a cover picture (``attached_pic``)."""
    path = Path(path)
    with av.open(str(path), "w") as container:
        cover = container.add_stream("mjpeg", rate=1)
        cover.width, cover.height = 64, 48
        cover.pix_fmt = "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        audio = container.add_stream("aac", rate=RATE)
        audio.layout = "mono"
        packet = av.Packet(_jpeg(0.0, (64, 48)))
        packet.stream, packet.time_base = cover, _MS
        packet.pts = packet.dts = 0
        container.mux(packet)
        for start in range(0, round(seconds * RATE), 1024):
            samples = np.frombuffer(_pcm(start, 1024, 0.2), "<i2").astype(np.float32) / 32768
            frame = av.AudioFrame.from_ndarray(samples[None], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = RATE, start
            for out in audio.encode(frame):
                container.mux(out)
        for out in audio.encode():
            container.mux(out)
    return path
