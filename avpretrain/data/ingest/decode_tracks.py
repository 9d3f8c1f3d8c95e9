"""The two halves of the streaming decoder: picking frames by time, and buffering audio.

Both are fed decoded PyAV frames in presentation order with their time in seconds from the video's
start; :mod:`avpretrain.data.ingest.decode` drives them. Both place what they get by its presentation
timestamp: frames are turned upright (display matrix or ``rotate`` tag) and kept at one size, audio
frames land at their own time and a stretch without packets becomes silence, recorded as a gap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

import av
import numpy as np

if TYPE_CHECKING:
    from avpretrain.data.ingest.decode import Window

# Audio frames this much later than the samples before them end: the stretch between is a gap.
AUDIO_GAP_S = 0.05


def quarter_turns(frame: av.VideoFrame, stream_metadata: Mapping[str, str]) -> int:
    """Counter-clockwise quarter turns that show ``frame`` upright.

    From its display matrix, or else from the stream's ``rotate`` tag (clockwise degrees, as older
    muxers wrote it; keys in lower case).
    """
    degrees = frame.rotation
    if not degrees:
        try:
            degrees = -float(stream_metadata.get("rotate", 0))
        except ValueError:
            degrees = 0
    return round(degrees / 90) % 4


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
    times before it: :attr:`first_time` tells the caller, who must not let a clip take a frame
    from after its end). A target is settled when a later frame arrives, so only the previous
    frame is kept; it is converted to RGB only if some target picks it. Frames are turned
    upright, and all are shrunk to the size of the first one converted, so a mid-stream
    resolution change still gives frames of one size (the windows given such a frame are listed
    in :attr:`resized`).

    Args:
        windows: the clips to pick frames for.
        num_frames: frames per clip.
        short_side: frames are shrunk to this short side (never enlarged).
        stream_metadata: the video stream's metadata (its ``rotate`` tag, if any).
    """

    def __init__(
        self,
        windows: list[Window],
        num_frames: int,
        short_side: int,
        stream_metadata: Mapping[str, str] | None = None,
    ) -> None:
        self._n = num_frames
        self._short_side = short_side
        self._metadata = {k.lower(): v for k, v in (stream_metadata or {}).items()}
        self._size: tuple[int, int] | None = None  # (width, height) of every output frame
        self.first_time: float | None = None
        self.resized: set[int] = set()
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
        # The one frame converted last (the previous frame is often picked several times), its
        # array and whether it was resized to the common size.
        self._cached: tuple[av.VideoFrame | None, np.ndarray | None, bool] = (None, None, False)

    def push(self, frame: av.VideoFrame, t: float | None) -> None:
        """Feed the next decoded frame; ``t`` is its time in seconds (None if unknown)."""
        if t is None:
            # No timestamp: assume it follows the previous frame.
            t = 0.0 if self._prev is None else self._prev_time + self._prev_duration
        if self.first_time is None:
            self.first_time = t
        while self._next < len(self._targets) and self._targets[self._next][0] < t:
            _, index, i = self._targets[self._next]
            self._next += 1
            if index in self._frames:
                # Before the first frame, the first frame stands in.
                source = self._prev if self._prev is not None else frame
                self._frames[index][i] = self._array(source, index)
                self._assigned[index] += 1
        self._prev, self._prev_duration = frame, self._duration(frame, t)
        self._prev_time = t

    def _duration(self, frame: av.VideoFrame, t: float) -> float:
        if frame.duration and frame.time_base:
            return float(frame.duration * frame.time_base)
        if math.isfinite(self._prev_time) and t > self._prev_time:
            return t - self._prev_time
        return 0.0

    def _array(self, frame: av.VideoFrame, window: int) -> np.ndarray:
        """[H, W, 3] uint8 of ``frame`` upright at the common size, for window ``window``."""
        if self._cached[0] is not frame:
            self._cached = (frame, *self._convert(frame))
        _, array, resized = self._cached
        assert array is not None  # cached together with the frame
        if resized:
            self.resized.add(window)
        return array

    def _convert(self, frame: av.VideoFrame) -> tuple[np.ndarray, bool]:
        """The frame upright at the common size, and whether that differs from its own size."""
        turns = quarter_turns(frame, self._metadata)
        width, height = (frame.height, frame.width) if turns % 2 else (frame.width, frame.height)
        own = output_size(width, height, self._short_side)
        if self._size is None:
            self._size = own
        out_w, out_h = (self._size[1], self._size[0]) if turns % 2 else self._size
        # AREA averages the source pixels, which avoids aliasing when shrinking a lot.
        array = frame.reformat(
            width=out_w, height=out_h, format="rgb24", interpolation="AREA"
        ).to_ndarray()
        if turns:
            array = np.ascontiguousarray(np.rot90(array, turns))
        return array, own != self._size

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
            last = self._array(self._prev, window.index)
            frames = [last if f is None else f for f in frames]
        return cast("list[np.ndarray]", frames)  # no None left


class AudioTrack:
    """Resampled mono audio on an absolute timeline, with the part no clip needs dropped.

    Every frame is placed at its own timestamp: a frame that starts more than ``AUDIO_GAP_S``
    after the audio before it ends (a stretch with no packets, or small gaps adding up) starts a
    new chunk there, the stretch reads as silence and is recorded in :attr:`gaps` (no zeros are
    stored, so a timestamp jump of hours costs nothing); a frame wholly inside audio already
    placed (overlapping packets) is dropped. Frames without a timestamp follow on. The
    resampler's output between two such events is contiguous. Channels are resampled as they are
    and then averaged: FFmpeg's own downmix adds channels unnormalised (5.1 comes out nearly 4x
    louder and clips), whereas the mean keeps the level and matches what the loader's FLAC
    reader does with several channels.
    """

    def __init__(self, sample_rate: int) -> None:
        self.rate = sample_rate
        self._resampler = self._new_resampler()
        self._chunks: list[tuple[int, np.ndarray]] = []  # (absolute index of first sample, data)
        self._end: int | None = None  # absolute index just after the last sample
        self._placed_end: float | None = None  # where the next input frame would be placed, s
        self.first_time: float | None = None  # time of the first sample
        self.gaps: list[tuple[float, float]] = []  # (start, end) of stretches filled with zeros

    def _new_resampler(self) -> av.AudioResampler:
        return av.AudioResampler(format="fltp", rate=self.rate)

    def push(self, frame: av.AudioFrame, t: float | None) -> None:
        """Feed the next decoded frame; ``t`` is its time in seconds (None if unknown)."""
        seconds = frame.samples / frame.sample_rate if frame.sample_rate else 0.0
        if t is not None and self._placed_end is not None:
            if t - self._placed_end > AUDIO_GAP_S:
                self._fill_gap(t)
            elif t + seconds <= self._placed_end - AUDIO_GAP_S:
                return  # overlaps audio already placed
        if self._end is None:
            self._end = round((t or 0.0) * self.rate)
            self.first_time = self._end / self.rate
            self._placed_end = self.first_time
        assert self._placed_end is not None  # set with _end by the first frame
        self._placed_end += seconds
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

    def _fill_gap(self, t: float) -> None:
        """Continue at ``t`` seconds: the audio so far ends, the stretch up to ``t`` is a gap."""
        self.finish()
        self._resampler = self._new_resampler()
        assert self._end is not None and self._placed_end is not None  # a frame was placed
        self._end = max(self._end, round(t * self.rate))
        self.gaps.append((self._placed_end, t))
        self._placed_end = t

    def gap_in(self, start: float, end: float) -> bool:
        """Whether part of ``start``-``end`` seconds is silence put in for missing audio.

        That is a recorded gap, or audio that starts later than ``start``.
        """
        late_start = self.first_time is not None and self.first_time > start + AUDIO_GAP_S
        return late_start or any(lo < end and hi > start for lo, hi in self.gaps)

    def _append(self, frames: list[av.AudioFrame]) -> None:
        for out in frames:
            samples = out.to_ndarray().mean(axis=0, dtype=np.float32)
            assert self._end is not None  # set by push() before the resampler gives output
            self._chunks.append((self._end, samples))
            self._end += len(samples)

    def end_time(self) -> float:
        """Time just after the last sample (-inf before any)."""
        return -math.inf if self._end is None else self._end / self.rate

    def extract(self, start: float, num_samples: int) -> np.ndarray:
        """[num_samples] float32 from ``start`` seconds; zeros where there is no audio."""
        out = np.zeros(num_samples, np.float32)
        offset = round(start * self.rate)
        for first, data in self._chunks:  # in order of time
            if first >= offset + num_samples:
                break
            lo, hi = max(offset, first), min(offset + num_samples, first + len(data))
            if hi > lo:
                out[lo - offset : hi - offset] = data[lo - first : hi - first]
        return out

    def drop_before(self, t: float) -> None:
        """Forget whole chunks that end before ``t`` seconds (all of them for t = inf)."""
        keep = math.inf if math.isinf(t) else round(t * self.rate)
        while self._chunks and self._chunks[0][0] + len(self._chunks[0][1]) <= keep:
            self._chunks.pop(0)
        self.gaps = [(lo, hi) for lo, hi in self.gaps if hi > t]
