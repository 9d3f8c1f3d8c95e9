"""Decoding one video into clips with PyAV: a single streaming pass over both tracks.

The video and audio packets are demuxed together and decoded once. Each clip window asks for
``num_frames`` frames at ``start + (i + 0.5) * length / num_frames``; the frame shown at such a time
is the last one whose presentation timestamp (``pts * time_base``) is not later, so variable
frame rates are handled by time, not by frame index. Only the chosen frames are converted to RGB
(and shrunk); audio is resampled to mono at the target rate as it arrives. A clip is handed out as
soon as both tracks have passed its end, and the audio before the earliest open clip is dropped,
so memory stays bounded by the clips in flight, not by the video's length.

Both tracks are placed by presentation timestamp (:mod:`avpretrain.data.ingest.decode_tracks`): audio
packet gaps become silence (``audio_gap``); a clip never takes a frame from after its end, so a
video track that starts late skips the clips before it (``video_gap``) and flags the clip it
starts in; frames are turned upright by the display matrix and all get one size. With several
audio streams the one marked default is decoded, unless one is asked for.

Windows far apart (manifest timestamps in a long video, or a shard that starts in the middle
of one) are reached by seeking to the keyframe before them instead of decoding the gap.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import av
import numpy as np

from avpretrain.data.ingest.decode_tracks import AudioTrack, FramePicker

logger = logging.getLogger("avpretrain.ingest")

# Clips shorter than asked by at most this much are full (container rounding, codec padding).
TOLERANCE_S = 0.05
# Decode on through gaps shorter than this; seek across longer ones.
SEEK_GAP_S = 30.0
# Seek this far before a window so both tracks have data from its start on.
SEEK_MARGIN_S = 1.0
# One track this far past a clip's end while the other is not there yet: the other has ended
# (a longer gap in one track ends the clips inside it as if that track had ended there).
MAX_LAG_S = 30.0
# Give up on a video after this many packets that fail to decode.
MAX_PACKET_ERRORS = 50
# Data ending this long before the container's duration means the file was cut short.
TRUNCATION_S = 1.0


@dataclass(frozen=True)
class DecodeOptions:
    """How clips are decoded.

    Args:
        num_frames: frames per clip.
        short_side: frames larger than this are shrunk to it (aspect kept); never enlarged.
        sample_rate: rate of the mono audio.
        min_seconds: clips with less real content than this are always skipped.
        pad_short: pad clips shorter than asked (last frame repeated, audio zeros) or skip them.
        silence_without_audio: an audio stream that gives no samples at all is replaced by
            silence (``no_audio`` set) rather than the clips skipped.
        threads: decoder threads (0: FFmpeg's choice).
    """

    num_frames: int = 10
    short_side: int = 256
    sample_rate: int = 16000
    min_seconds: float = 1.0
    pad_short: bool = True
    silence_without_audio: bool = False
    threads: int = 0


@dataclass(frozen=True)
class Window:
    """One clip to cut: ``index`` within its video, ``start``/``end`` in seconds."""

    index: int
    start: float
    end: float


@dataclass
class DecodedClip:
    """A decoded clip.

    Attributes:
        frames: ``num_frames`` arrays [H, W, 3] uint8.
        audio: [round(length * sample_rate)] float32 mono; zeros where there is no audio.
        frame_times: sampling time of each frame from the clip start, seconds.
        padded: shorter than asked; the tail repeats the last frame and the audio is zeros.
        no_audio: the audio is silence because the video has none.
        audio_gap: part of the audio is silence put in where the stream had no packets.
        video_gap: the video starts inside the clip; the frames before it repeat its first.
        size_changed: the source's frame size changed; some frames were scaled to the others'.
    """

    window: Window
    frames: list[np.ndarray]
    audio: np.ndarray
    frame_times: list[float]
    padded: bool = False
    no_audio: bool = False
    audio_gap: bool = False
    video_gap: bool = False
    size_changed: bool = False

    def flags(self) -> dict[str, bool]:
        """The clip's flags, as stored in its JSON."""
        names = ("no_audio", "padded", "audio_gap", "video_gap", "size_changed")
        return {name: getattr(self, name) for name in names}


@dataclass(frozen=True)
class Skip:
    """Why the clip ``window`` was not written: a reason code and a readable detail."""

    reason: str
    detail: str
    window: Window


class VideoSkipped(Exception):
    """A whole video cannot be used; ``reason`` is one of the skip reason codes."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ProbeResult:
    """What opening a file tells.

    Attributes:
        duration: seconds.
        has_audio: the file has an audio stream.
        audio_stream: which of its audio streams to decode (0 when it has none).
        audio_choice: why that one, when there were several to choose from; else None.
    """

    duration: float
    has_audio: bool
    audio_stream: int = 0
    audio_choice: str | None = None


def choose_audio_stream(
    streams: list[av.audio.stream.AudioStream], wanted: int | None
) -> tuple[int, str]:
    """Position of the audio stream to decode among ``streams``, and why it was chosen.

    ``wanted`` (``--audio-stream``) if given, else the first marked default, else the first.

    Raises:
        VideoSkipped: ``wanted`` is past the file's audio streams (reason ``audio_stream``).
    """
    if wanted is not None:
        if wanted >= len(streams):
            raise VideoSkipped(
                "audio_stream", f"--audio-stream {wanted} asked; the file has {len(streams)}"
            )
        return wanted, f"audio stream {wanted} as --audio-stream asked"
    for i, stream in enumerate(streams):
        if stream.disposition & av.stream.Disposition.default:
            return i, f"audio stream {i}, the one marked default"
    return 0, "audio stream 0 (none is marked default)"


def probe(path: str, audio_stream: int | None = None) -> ProbeResult:
    """Open a file and read its header; raise :class:`VideoSkipped` if it cannot be used.

    Args:
        path: the video file.
        audio_stream: which audio stream to use (position among the file's audio streams);
            None: the one marked default (see :func:`choose_audio_stream`).
    """
    if not os.path.isfile(path):
        what = "a folder, not a video file" if os.path.isdir(path) else "no such file"
        raise VideoSkipped("missing", what)
    try:
        container = av.open(path)
    except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise VideoSkipped("corrupt", f"cannot open: {err}") from err
    with container:
        if video_stream(container) is None:
            raise VideoSkipped("no_video", _no_video(container))
        duration = _duration(container)
        if duration is None or duration <= 0:
            raise VideoSkipped("corrupt", "no decodable packets (duration unknown)")
        streams = list(container.streams.audio)
        if not streams:
            return ProbeResult(duration, False)
        index, why = choose_audio_stream(streams, audio_stream)
        choice = f"{len(streams)} audio streams; using {why}" if len(streams) > 1 else None
        return ProbeResult(duration, True, index, choice)


def video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream | None:
    """The first video stream that is moving pictures, not a cover image (``attached_pic``)."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def _no_video(container: av.container.InputContainer) -> str:
    if container.streams.video:
        return "no video stream, only a cover picture (an audio file?)"
    return "no video stream"


def _duration(container: av.container.InputContainer) -> float | None:
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    # No duration in the header (raw streams): scan packet timestamps, which is cheap.
    stream = video_stream(container)
    assert stream is not None and stream.time_base is not None  # the caller checked the stream
    start = _start_time(container)
    end = None
    try:
        for packet in container.demux(stream):
            if packet.pts is not None:
                t = float((packet.pts + (packet.duration or 0)) * stream.time_base)
                end = t if end is None else max(end, t)
    except av.FFmpegError:
        pass
    return None if end is None else end - start


def _start_time(container: av.container.InputContainer) -> float:
    return (container.start_time or 0) / av.time_base


def clip_windows(duration: float, clip_seconds: float, min_seconds: float) -> list[Window]:
    """Consecutive windows of ``clip_seconds`` over ``duration``.

    A tail is kept if it is at least ``min_seconds`` long (it is then padded or skipped at decode
    time).
    """
    windows: list[Window] = []
    start = 0.0
    while start + min_seconds <= duration + 1e-9 and start < duration:
        windows.append(Window(len(windows), start, round(start + clip_seconds, 6)))
        start = round(start + clip_seconds, 6)
    return windows


def _runs(windows: list[Window]) -> list[list[Window]]:
    """Split windows sorted by start into runs that are decoded without seeking."""
    runs: list[list[Window]] = []
    reach = -np.inf
    for w in windows:
        if not runs or w.start - reach > SEEK_GAP_S:
            runs.append([])
        runs[-1].append(w)
        reach = max(reach, w.end)
    return runs


def decode_clips(
    path: str,
    windows: list[Window],
    options: DecodeOptions,
    duration: float | None = None,
    use_audio: bool = True,
    audio_stream: int = 0,
) -> Iterator[DecodedClip | Skip]:
    """Decode the clips ``windows`` of one video, in order of their start.

    Yields a :class:`DecodedClip` or a :class:`Skip` for every window; a file that cannot be
    opened yields one :class:`Skip` per window. Never raises for bad data.

    Args:
        path: the video file.
        windows: clips to cut, seconds from the video's start.
        options: frames, sizes, rates and the short-clip policy.
        duration: the duration the header promised, to tell a truncated file from a short one.
        use_audio: False ignores any audio track and stores silence (``no_audio`` set).
        audio_stream: which audio stream to decode (position among the file's audio streams).
    """
    windows = sorted(windows, key=lambda w: (w.start, w.index))
    try:
        container = av.open(path)
    except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
        for w in windows:
            yield Skip("corrupt", f"cannot open: {err}", w)
        return
    with container:
        vstream = video_stream(container)
        if vstream is None:
            for w in windows:
                yield Skip("no_video", _no_video(container), w)
            return
        vstream.thread_type = "AUTO"
        vstream.thread_count = options.threads
        audio = container.streams.audio
        astream = audio[audio_stream] if use_audio and len(audio) > audio_stream else None
        for i, run in enumerate(_runs(windows)):
            session = _RunDecoder(container, vstream, astream, run, options, duration)
            yield from session.decode(seek=i > 0 or run[0].start > SEEK_MARGIN_S)


@dataclass
class _RunDecoder:
    """Decodes one run of nearby windows from a single position in the file."""

    container: av.container.InputContainer
    vstream: av.video.stream.VideoStream
    astream: av.audio.stream.AudioStream | None
    windows: list[Window]
    options: DecodeOptions
    duration: float | None
    error: str | None = None
    eof: bool = False
    pending: list[Window] = field(default_factory=list)

    def __post_init__(self) -> None:
        opts = self.options
        self.t0 = _start_time(self.container)
        self.picker = FramePicker(
            self.windows, opts.num_frames, opts.short_side, self.vstream.metadata
        )
        self.audio = AudioTrack(opts.sample_rate) if self.astream is not None else None
        self.pending = list(self.windows)

    def decode(self, seek: bool) -> Iterator[DecodedClip | Skip]:
        if seek:
            self._seek(self.windows[0].start - SEEK_MARGIN_S)
        streams = [self.vstream] + ([self.astream] if self.astream is not None else [])
        errors = 0
        try:
            for packet in self.container.demux(*streams):
                try:
                    frames = packet.decode()
                except av.FFmpegError as err:
                    errors += 1
                    if errors >= MAX_PACKET_ERRORS:
                        self.error = f"{errors} packets failed to decode, last: {err}"
                        break
                    continue
                for frame in frames:
                    self._push(frame)  # type: ignore[arg-type]  # demuxed a/v streams only
                yield from self._emit_ready()
                if not self.pending:
                    return
            else:
                self.eof = True
        except (av.FFmpegError, ValueError) as err:
            self.error = f"reading failed: {err}"
        if self.audio is not None:
            self.audio.finish()
        truncated = self._truncated()
        for w in list(self.pending):
            yield self._finalize(w, truncated)

    def _seek(self, t: float) -> None:
        stream = self.vstream
        assert stream.time_base is not None  # set on every demuxed stream
        try:
            self.container.seek(int((max(t, 0.0) + self.t0) / stream.time_base), stream=stream)
        except av.FFmpegError as err:
            # Unseekable input: decoding on from here reaches the window all the same.
            logger.debug("seek to %.2f s failed (%s); decoding through", t, err)

    def _push(self, frame: av.VideoFrame | av.AudioFrame) -> None:
        t = None if frame.time is None else frame.time - self.t0
        if isinstance(frame, av.VideoFrame):
            self.picker.push(frame, t)
        elif self.audio is not None:
            self.audio.push(frame, t)

    def _video_end(self) -> float:
        return self.picker.covered_until()

    def _audio_end(self) -> float:
        return np.inf if self.audio is None else self.audio.end_time()

    def _emit_ready(self) -> Iterator[DecodedClip | Skip]:
        while self.pending:
            w = self.pending[0]
            video_end, audio_end = self._video_end(), self._audio_end()
            # Audio must be complete (no tolerance: it would zero the clip's last samples).
            ready = self.picker.done(w) and video_end >= w.end - TOLERANCE_S and audio_end >= w.end
            # One track far beyond the clip while the other never got there: it has ended.
            stalled = max(video_end, 0 if self.audio is None else audio_end) > w.end + MAX_LAG_S
            if not (ready or stalled):
                return
            yield self._finalize(w, truncated=False)

    def _finalize(self, w: Window, truncated: bool) -> DecodedClip | Skip:
        self.pending.remove(w)
        if self.audio is not None and self.audio.end_time() == -np.inf:
            # An audio stream with no decodable sample is no audio at all.
            if not self.options.silence_without_audio:
                self.picker.take(w)
                return Skip("no_audio", "the audio stream gave no samples", w)
            self.audio = None
        frames = self.picker.take(w)
        content_end = min(self._video_end(), self._audio_end(), w.end)
        available = content_end - w.start
        length = w.end - w.start
        audio = self._clip_audio(w)
        audio_gap = self.audio is not None and self.audio.gap_in(w.start, w.end)
        if self.pending:
            keep_from = min(o.start for o in self.pending)
        else:
            keep_from = np.inf
        if self.audio is not None:
            self.audio.drop_before(keep_from)
        full = available >= length - TOLERANCE_S
        if not full and (available < self.options.min_seconds or not self.options.pad_short):
            return Skip(self._short_reason(truncated), self._short_detail(w, available), w)
        if frames is None:
            return Skip("decode_error", "no video frame decoded for this clip", w)
        first = self.picker.first_time
        video_gap = first is not None and first > w.start + TOLERANCE_S
        if (
            video_gap
            and first is not None  # implied by video_gap; narrows the type
            and (content_end - first < self.options.min_seconds or not self.options.pad_short)
        ):
            detail = (
                f"clip {w.start:.2f}-{w.end:.2f} s has video only from {first:.2f} s "
                f"({max(content_end - first, 0.0):.2f} s; the video track starts late)"
            )
            return Skip("video_gap", detail, w)
        n = self.options.num_frames
        times = [(i + 0.5) * length / n for i in range(n)]
        return DecodedClip(
            w,
            frames,
            audio,
            times,
            padded=not full,
            no_audio=self.audio is None,
            audio_gap=audio_gap,
            video_gap=video_gap,
            size_changed=w.index in self.picker.resized,
        )

    def _clip_audio(self, w: Window) -> np.ndarray:
        rate = self.options.sample_rate
        n = round((w.end - w.start) * rate)
        if self.audio is None:
            return np.zeros(n, np.float32)
        return self.audio.extract(w.start, n)

    def _short_reason(self, truncated: bool) -> str:
        if self.error is not None:
            return "decode_error"
        return "truncated" if truncated else "too_short"

    def _short_detail(self, w: Window, available: float) -> str:
        audio = "no audio" if self.audio is None else f"audio to {self._audio_end():.2f} s"
        detail = (
            f"clip {w.start:.2f}-{w.end:.2f} s has {max(available, 0.0):.2f} s of content "
            f"(video to {self._video_end():.2f} s, {audio})"
        )
        if self.error is not None:
            detail += f"; {self.error}"
        elif self.duration is not None and self._truncated():
            detail += f"; the header promised {self.duration:.2f} s"
        return detail

    def _truncated(self) -> bool:
        if not self.eof or self.duration is None:
            return False
        ends = [self._video_end()] + ([self._audio_end()] if self.audio is not None else [])
        return max(ends) < self.duration - TRUNCATION_S
