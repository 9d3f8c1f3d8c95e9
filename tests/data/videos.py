"""Tiny test videos written with PyAV, whose content is known second by second.

Frames are one solid colour per second (``COLOURS[int(t) % len(COLOURS)]``); audio is a 440 Hz sine
whose amplitude is ``0.1 * (1 + int(t))``, identical on every channel, so a test can tell from
any frame or any stretch of audio which second of the source it came from.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

COLOURS = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0), (255, 255, 0))
TONE_HZ = 440.0


def colour_at(t: float) -> tuple[int, int, int]:
    """The colour of the source frame shown at time ``t`` (seconds)."""
    return COLOURS[int(t) % len(COLOURS)]


def amplitude_at(t: float) -> float:
    """Peak amplitude of the source tone at time ``t`` (seconds)."""
    return 0.1 * (1 + int(t))


def source_audio(seconds: float, rate: int) -> np.ndarray:
    """The mono source signal: [samples] float32."""
    t = np.arange(round(seconds * rate)) / rate
    return (0.1 * (1 + np.floor(t)) * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)


def _video_frames(stream, times: list[float], size: tuple[int, int], time_base: Fraction):
    width, height = size
    for t in times:
        image = np.empty((height, width, 3), np.uint8)
        image[:] = colour_at(t)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = round(t / time_base)
        frame.time_base = time_base
        yield t, stream.encode(frame)


def _audio_frames(stream, seconds: float, rate: int, layout: str, block: int = 1024):
    fmt = stream.codec_context.format.name
    channels = len(stream.codec_context.layout.channels)
    signal = source_audio(seconds, rate)
    for start in range(0, len(signal), block):
        planar = np.tile(signal[start : start + block], (channels, 1))
        array = planar if fmt.endswith("p") else planar.T.reshape(1, -1)
        if fmt.startswith("s16"):
            array = (array * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(array), format=fmt, layout=layout)
        frame.sample_rate = rate
        frame.pts = start
        yield start / rate, stream.encode(frame)


def write_video(
    path: str | Path,
    seconds: float = 3.0,
    fps: int = 10,
    size: tuple[int, int] = (64, 48),
    audio_rate: int | None = 44100,
    layout: str = "stereo",
    audio_codec: str | None = None,
    frame_times: list[float] | None = None,
    video: bool = True,
    audio_seconds: float | None = None,
) -> Path:
    """Write a test video; the container follows the suffix (``.mp4`` or ``.mkv``).

    Args:
        path: output file.
        seconds: length of the content.
        fps: frame rate when ``frame_times`` is not given.
        size: (width, height) of the frames.
        audio_rate: sample rate of the audio track; None writes no audio stream.
        layout: channel layout of the audio ("mono", "stereo", "5.1", ...).
        audio_codec: defaults to AAC in .mp4 and FLAC in .mkv.
        frame_times: presentation times of the frames (variable frame rate), in seconds.
        video: False writes an audio-only file.
        audio_seconds: length of the audio (default ``seconds``); 0 leaves the stream empty.
    """
    path = Path(path)
    codec = audio_codec or ("flac" if path.suffix == ".mkv" else "aac")
    with av.open(str(path), "w") as container:
        packets = []
        if video:
            vstream = container.add_stream("mpeg4", rate=fps)
            vstream.width, vstream.height = size
            vstream.pix_fmt = "yuv420p"
            time_base = Fraction(1, 1000) if frame_times is not None else Fraction(1, fps)
            times = frame_times or [i / fps for i in range(round(seconds * fps))]
            packets.append(_video_frames(vstream, times, size, time_base))
        if audio_rate is not None:
            astream = container.add_stream(codec, rate=audio_rate)
            astream.layout = layout
            audio_len = seconds if audio_seconds is None else audio_seconds
            packets.append(_audio_frames(astream, audio_len, audio_rate, layout))
        # Interleave by time as a real muxer would receive them.
        merged = sorted(
            (t, i, k, p) for i, gen in enumerate(packets) for k, (t, p) in enumerate(gen)
        )
        for *_, encoded in merged:
            for packet in encoded:
                container.mux(packet)
        for stream in container.streams:
            for packet in stream.encode():
                container.mux(packet)
    return path
