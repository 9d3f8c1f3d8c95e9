"""The two halves of the streaming decoder: picking frames by time, and buffering audio.

Both are fed decoded PyAV frames in presentation order with their time in seconds from the video's
start; :mod:`avpretrain.data.decode` drives them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import av
import numpy as np

if TYPE_CHECKING:
    from avpretrain.data.decode import Window


def output_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) after shrinking the short side to ``short_side``; never enlarges."""
    short = min(width, height)
    if short <= short_side:
        return width, height
    scale = short_side / short
    if width <= height:
        return short_side, max(1, round(height * scale))
    return max(1, round(width * scale)), short_side


class FramePicker:
    """Chooses, for every sampling time of every window, the frame shown at that time.

    The frame shown at ``t`` is the last one with presentation time <= ``t`` (the first frame for
    times before it). A target is settled when a later frame arrives, so only the previous frame
    is kept; it is converted to RGB only if some target picks it.
    """

    def __init__(self, windows: list[Window], num_frames: int, short_side: int) -> None:
        self._n = num_frames
        self._short_side = short_side
        self._targets = sorted(
            (w.start + (i + 0.5) * (w.end - w.start) / num_frames, w.index, i)
            for w in windows
            for i in range(num_frames)
        )
        self._next = 0
        self._frames: dict[int, list[np.ndarray | None]] = {
            w.index: [None] * num_frames for w in windows
        }
        self._assigned = dict.fromkeys(self._frames, 0)
        self._prev: av.VideoFrame | None = None
        self._prev_time = -math.inf
        self._prev_duration = 0.0
        # The one frame converted last (the previous frame is often picked several times).
        self._cached: tuple[av.VideoFrame | None, np.ndarray | None] = (None, None)

    def push(self, frame: av.VideoFrame, t: float | None) -> None:
        """Feed the next decoded frame; ``t`` is its time in seconds (None if unknown)."""
        if t is None:
            # No timestamp: assume it follows the previous frame.
            t = 0.0 if self._prev is None else self._prev_time + self._prev_duration
        while self._next < len(self._targets) and self._targets[self._next][0] < t:
            _, index, i = self._targets[self._next]
            self._next += 1
            if index in self._frames:
                # Before the first frame, the first frame stands in.
                source = self._prev if self._prev is not None else frame
                self._frames[index][i] = self._array(source)
                self._assigned[index] += 1
        self._prev, self._prev_duration = frame, self._duration(frame, t)
        self._prev_time = t

    def _duration(self, frame: av.VideoFrame, t: float) -> float:
        if frame.duration and frame.time_base:
            return float(frame.duration * frame.time_base)
        if math.isfinite(self._prev_time) and t > self._prev_time:
            return t - self._prev_time
        return 0.0

    def _array(self, frame: av.VideoFrame) -> np.ndarray:
        if self._cached[0] is frame:
            return self._cached[1]
        width, height = output_size(frame.width, frame.height, self._short_side)
        # AREA averages the source pixels, which avoids aliasing when shrinking a lot.
        array = frame.reformat(
            width=width, height=height, format="rgb24", interpolation="AREA"
        ).to_ndarray()
        self._cached = (frame, array)
        return array

    def done(self, window: Window) -> bool:
        """All frames of ``window`` are settled."""
        return self._assigned[window.index] == self._n

    def covered_until(self) -> float:
        """End time of the latest frame seen (-inf before any)."""
        return self._prev_time + self._prev_duration

    def take(self, window: Window) -> list[np.ndarray] | None:
        """Remove ``window`` and return its frames; unsettled ones repeat the latest frame.

        Returns None if no frame was ever decoded.
        """
        frames = self._frames.pop(window.index)
        del self._assigned[window.index]
        if any(f is None for f in frames):
            if self._prev is None:
                return None
            last = self._array(self._prev)
            frames = [last if f is None else f for f in frames]
        return frames


class AudioTrack:
    """Resampled mono audio on an absolute timeline, with the part no clip needs dropped.

    The first decoded frame's timestamp anchors the timeline; the samples after it are taken
    as contiguous (resampler output is). Channels are resampled as they are and then averaged:
    FFmpeg's own downmix adds channels unnormalised (5.1 comes out nearly 4x louder and clips),
    whereas the mean keeps the level and matches :func:`avpretrain.data.schema.decode_flac`.
    """

    def __init__(self, sample_rate: int) -> None:
        self.rate = sample_rate
        self._resampler = self._new_resampler()
        self._origin: int | None = None  # absolute sample index of the first kept sample
        self._chunks: list[np.ndarray] = []
        self._count = 0

    def _new_resampler(self) -> av.AudioResampler:
        return av.AudioResampler(format="fltp", rate=self.rate)

    def push(self, frame: av.AudioFrame, t: float | None) -> None:
        """Feed the next decoded frame; ``t`` is its time in seconds (None if unknown)."""
        if self._origin is None:
            self._origin = round((t or 0.0) * self.rate)
        try:
            out = self._resampler.resample(frame)
        except ValueError:
            # The input format changed mid-stream (rate or layout switch): start a new resampler.
            self.finish()
            self._resampler = self._new_resampler()
            out = self._resampler.resample(frame)
        self._append(out)

    def finish(self) -> None:
        """Flush the samples the resampler still holds."""
        self._append(self._resampler.resample(None))

    def _append(self, frames: list[av.AudioFrame]) -> None:
        for out in frames:
            samples = out.to_ndarray().mean(axis=0, dtype=np.float32)
            self._chunks.append(samples)
            self._count += len(samples)

    def end_time(self) -> float:
        """Time just after the last sample (-inf before any)."""
        if self._origin is None:
            return -math.inf
        return (self._origin + self._count) / self.rate

    def extract(self, start: float, num_samples: int) -> np.ndarray:
        """[num_samples] float32 from ``start`` seconds; zeros where there is no audio."""
        out = np.zeros(num_samples, np.float32)
        if self._origin is None or not self._chunks:
            return out
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        data = self._chunks[0]
        offset = round(start * self.rate) - self._origin
        lo, hi = max(offset, 0), min(offset + num_samples, len(data))
        if hi > lo:
            out[lo - offset : hi - offset] = data[lo:hi]
        return out

    def drop_before(self, t: float) -> None:
        """Forget whole chunks that end before ``t`` seconds (all of them for t = inf)."""
        if self._origin is None:
            return
        keep = math.inf if math.isinf(t) else round(t * self.rate)
        while self._chunks and self._origin + len(self._chunks[0]) <= keep:
            dropped = len(self._chunks.pop(0))
            self._origin += dropped
            self._count -= dropped
