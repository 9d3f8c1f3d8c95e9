"""Decoding places audio and frames by presentation timestamp (avpretrain.data.ingest.decode).

Each test writes its own Matroska file packet by packet (tests/data/odd_videos.py): audio packet
gaps, a video track starting late, rotation metadata, several audio streams, a size change.
"""

from __future__ import annotations

import tracemalloc
from dataclasses import replace

import av
import numpy as np
import pytest

from avpretrain.data.ingest.decode import (
    DecodedClip,
    DecodeOptions,
    Skip,
    VideoSkipped,
    Window,
    clip_windows,
    decode_clips,
    probe,
)
from tests.data.odd_videos import LEFT, stream_amplitude, write_cover_only, write_timed
from tests.data.videos import colour_at

OPTS = DecodeOptions(num_frames=4, short_side=32, sample_rate=16000, min_seconds=0.5)
FPS10 = [i / 10 for i in range(80)]  # 8 s of frames at 10 fps


def _decode(path, windows=None, opts=OPTS, **kwargs) -> dict[float, DecodedClip | Skip]:
    info = probe(str(path), kwargs.pop("audio_stream", None))
    windows = windows or clip_windows(info.duration, 1.0, 0.5)
    items = decode_clips(
        str(path), windows, opts, info.duration, audio_stream=info.audio_stream, **kwargs
    )
    return {item.window.start: item for item in items}


def _peak(audio: np.ndarray) -> float:
    """Peak of a sine from its RMS."""
    return float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)) * np.sqrt(2))


def _colour(frame: np.ndarray) -> np.ndarray:
    """Colour of the right half (the left half is LEFT), bottom-right of an upright frame."""
    return frame[-3, -3].astype(int)


def test_an_audio_packet_gap_becomes_flagged_silence_and_keeps_later_audio_in_place(tmp_path):
    path = write_timed(tmp_path / "gap.mkv", FPS10, audio_spans=[(0, 2), (5, 8)])
    clips = _decode(path)
    assert sorted(clips) == [float(t) for t in range(8)]  # the last clip is not lost
    for start, clip in clips.items():
        assert isinstance(clip, DecodedClip) and not clip.padded
        in_gap = 2 <= start < 5
        assert clip.flags()["audio_gap"] == in_gap
        expected = 0.0 if in_gap else stream_amplitude(0)
        assert _peak(clip.audio) == pytest.approx(expected, abs=0.01)
    # Audio after the gap sits at its own time: a clip straddling the gap's end is silent for
    # exactly its first half (counting would have moved the sound 3 s earlier).
    (clip,) = _decode(path, [Window(0, 4.5, 5.5)]).values()
    assert clip.flags()["audio_gap"]
    assert not clip.audio[:7900].any()
    assert _peak(clip.audio[8100:]) == pytest.approx(stream_amplitude(0), rel=0.02)


def test_a_timestamp_jump_of_a_day_costs_no_memory(tmp_path):
    path = write_timed(tmp_path / "jump.mkv", FPS10[:20], audio_spans=[(0, 1), (86400, 86401)])
    tracemalloc.start()
    try:
        (clip,) = _decode(path, [Window(0, 0.5, 1.5)]).values()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6  # zeros for the day would be 5.5 GB
    assert clip.flags()["audio_gap"] and not clip.audio[8100:].any()
    assert _peak(clip.audio[:7900]) == pytest.approx(stream_amplitude(0), rel=0.02)


def test_late_video_never_lends_frames_to_clips_before_it(tmp_path):
    path = write_timed(tmp_path / "late.mkv", FPS10[50:], audio_spans=[(0, 8)])
    clips = _decode(path)
    for start in (0.0, 1.0, 2.0, 3.0, 4.0):
        assert isinstance(clips[start], Skip) and clips[start].reason == "video_gap"
        assert "starts late" in clips[start].detail and "5.00 s" in clips[start].detail
    for start in (5.0, 6.0, 7.0):
        clip = clips[start]
        assert isinstance(clip, DecodedClip) and not clip.flags()["video_gap"]
        for frame, t in zip(clip.frames, clip.frame_times, strict=True):
            assert np.abs(_colour(frame) - colour_at(start + t)).max() < 16
    # A clip the video starts inside: kept and flagged, every frame from inside the clip.
    (clip,) = _decode(path, [Window(0, 4.0, 6.0)]).values()
    assert isinstance(clip, DecodedClip) and clip.flags()["video_gap"]
    assert all(np.abs(_colour(f) - colour_at(5.0)).max() < 16 for f in clip.frames[:2])
    # With --short skip, such a clip is skipped instead, with the reason.
    (skip,) = _decode(path, [Window(0, 4.0, 6.0)], replace(OPTS, pad_short=False)).values()
    assert isinstance(skip, Skip) and skip.reason == "video_gap"


@pytest.mark.parametrize(
    ("kwargs", "turned"),
    [
        ({"rotation": -90}, True),  # display matrix: 90 degrees clockwise (a phone held upright)
        ({"rotation": 180}, False),
        ({"rotate_tag": "90"}, True),  # the older stream tag, clockwise degrees
        ({}, False),
    ],
)
def test_rotation_metadata_turns_frames_upright(tmp_path, kwargs, turned):
    if "rotation" in kwargs and not hasattr(av.video.stream.VideoStream, "set_display_rotation"):
        pytest.skip("this PyAV cannot write a display matrix (set_display_rotation: PyAV 18)")
    path = write_timed(tmp_path / "rot.mkv", FPS10[:20], audio_spans=[(0, 2)], **kwargs)
    clip = _decode(path)[0.0]
    frame = clip.frames[0]
    # Stored 64 x 48 with the left half LEFT. Turned clockwise it is 48 wide, 64 high, and the
    # stored left half is on top; turned by 180 degrees the left half is on the right.
    assert frame.shape == ((43, 32, 3) if turned else (32, 43, 3))
    top_left, bottom_right = frame[2, 2].astype(int), frame[-3, -3].astype(int)
    colour = np.array(colour_at(clip.frame_times[0]))
    if kwargs.get("rotation") == 180:
        top_left, bottom_right = bottom_right, top_left
    assert np.abs(top_left - LEFT).max() < 16 and np.abs(bottom_right - colour).max() < 16


def test_the_default_audio_stream_is_chosen_or_the_one_asked_for(tmp_path):
    path = write_timed(
        tmp_path / "two.mkv", FPS10[:20], audio_spans=[(0, 2)], audio_streams=2, default_audio=1
    )
    info = probe(str(path))
    assert info.audio_stream == 1 and "marked default" in info.audio_choice
    clip = _decode(path)[0.0]
    assert _peak(clip.audio) == pytest.approx(stream_amplitude(1), rel=0.02)
    clip = _decode(path, audio_stream=0)[0.0]
    assert _peak(clip.audio) == pytest.approx(stream_amplitude(0), rel=0.02)
    assert "--audio-stream" in probe(str(path), 0).audio_choice
    with pytest.raises(VideoSkipped, match="--audio-stream 2 asked; the file has 2"):
        probe(str(path), 2)
    none_default = write_timed(tmp_path / "plain.mkv", FPS10[:20], [(0, 2)], audio_streams=2)
    assert probe(str(none_default)).audio_stream == 0
    assert probe(str(write_timed(tmp_path / "one.mkv", FPS10[:20], [(0, 2)]))).audio_choice is None


def test_a_resolution_change_still_gives_frames_of_one_size(tmp_path):
    path = write_timed(
        tmp_path / "size.mkv",
        FPS10[:30],
        audio_spans=[(0, 3)],
        size_at=lambda t: (64, 48) if t < 1.45 else (96, 48),
    )
    clips = _decode(path)
    for start, clip in clips.items():
        assert {f.shape for f in clip.frames} == {(32, 43, 3)}
        assert clip.flags()["size_changed"] == (start >= 1.0)
        for frame, t in zip(clip.frames, clip.frame_times, strict=True):
            assert np.abs(_colour(frame) - colour_at(start + t)).max() < 16


def test_a_cover_picture_is_not_a_video(tmp_path):
    path = str(write_cover_only(tmp_path / "song.mp4"))
    with pytest.raises(VideoSkipped, match="only a cover picture"):
        probe(path)
    (skip,) = decode_clips(path, [Window(0, 0.0, 1.0)], OPTS)
    assert isinstance(skip, Skip) and skip.reason == "no_video"
