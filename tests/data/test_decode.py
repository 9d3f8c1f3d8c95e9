"""Decoding videos into clips (avpretrain.data.ingest.decode) on tiny videos written with PyAV."""

from __future__ import annotations

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
from avpretrain.data.ingest.decode_tracks import output_size
from tests.data.videos import amplitude_at, colour_at, write_video

OPTS = DecodeOptions(num_frames=4, short_side=32, sample_rate=16000, min_seconds=0.5)


def _centre(frame: np.ndarray) -> np.ndarray:
    return frame[frame.shape[0] // 2, frame.shape[1] // 2].astype(int)


def _peak_amplitude(audio: np.ndarray) -> float:
    """Peak of a sine from its RMS (RMS * sqrt 2)."""
    return float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)) * np.sqrt(2))


def _decode(path, windows, opts=OPTS) -> list[DecodedClip | Skip]:
    return list(decode_clips(str(path), windows, opts, probe(str(path)).duration))


def test_output_size_shrinks_short_side_and_never_enlarges():
    assert output_size(1280, 720, 256) == (455, 256)  # 1280 * 256 / 720 = 455.1
    assert output_size(720, 1280, 256) == (256, 455)
    assert output_size(64, 48, 256) == (64, 48)


def test_clip_windows_keep_tails_of_at_least_min_seconds():
    spans = [(w.start, w.end) for w in clip_windows(5.312, 2.0, 1.0)]
    assert spans == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)]  # the 1.31 s tail is kept
    assert len(clip_windows(5.312, 2.0, 1.5)) == 2
    assert clip_windows(0.4, 2.0, 0.5) == []


@pytest.mark.parametrize(
    ("name", "rate", "layout"),
    [("stereo.mp4", 44100, "stereo"), ("mono.mkv", 22050, "mono"), ("surround.mkv", 8000, "5.1")],
)
def test_round_trip_frames_and_audio_match_the_source(tmp_path, name, rate, layout):
    path = write_video(tmp_path / name, seconds=3.0, audio_rate=rate, layout=layout)
    clips = _decode(path, clip_windows(3.0, 1.0, 0.5))
    assert [c.window.start for c in clips] == [0.0, 1.0, 2.0]
    for clip in clips:
        assert isinstance(clip, DecodedClip) and not clip.padded and not clip.no_audio
        assert clip.frame_times == pytest.approx([0.125, 0.375, 0.625, 0.875])
        assert len(clip.frames) == 4 and clip.frames[0].shape == (32, 43, 3)  # 64x48 -> short 32
        for frame, t in zip(clip.frames, clip.frame_times, strict=True):
            assert np.abs(_centre(frame) - colour_at(clip.window.start + t)).max() < 12
        assert clip.audio.shape == (16000,) and clip.audio.dtype == np.float32
        # The level of each second survives resampling and the channel mean (no 5.1 boost).
        inner = clip.audio[1600:-1600]
        assert _peak_amplitude(inner) == pytest.approx(amplitude_at(clip.window.start), rel=0.03)


def test_audio_is_aligned_with_the_clip_start(tmp_path):
    path = write_video(tmp_path / "a.mkv", seconds=3.0, audio_rate=22050, layout="mono")
    (clip,) = _decode(path, [Window(0, 0.5, 1.5)])
    # The step from amplitude 0.1 to 0.2 at t = 1.0 s lies 8000 samples into the clip.
    before, after = clip.audio[7000:7900], clip.audio[8100:9000]
    assert _peak_amplitude(before) == pytest.approx(0.1, rel=0.05)
    assert _peak_amplitude(after) == pytest.approx(0.2, rel=0.05)


def test_variable_frame_rate_picks_frames_by_timestamp(tmp_path):
    times = [0.0, 0.3, 0.35, 1.2, 1.9, 2.5, 2.95]
    path = write_video(tmp_path / "vfr.mkv", seconds=3.0, frame_times=times)
    opts = DecodeOptions(num_frames=8, short_side=32, min_seconds=0.5)
    (clip,) = _decode(path, [Window(0, 0.0, 3.0)], opts)
    targets = clip.frame_times
    shown = [max(ft for ft in times if ft <= t) for t in targets]  # last frame not after t
    by_index = [times[min(int(t / 3.0 * len(times)), len(times) - 1)] for t in targets]
    assert [colour_at(s) for s in shown] != [colour_at(s) for s in by_index]  # test can fail
    for frame, s in zip(clip.frames, shown, strict=True):
        assert np.abs(_centre(frame) - colour_at(s)).max() < 12


def test_seeking_to_a_later_window_gives_the_same_clip(tmp_path):
    path = write_video(tmp_path / "s.mp4", seconds=4.0, audio_rate=44100)
    full = _decode(path, clip_windows(4.0, 1.0, 0.5))[3]
    (alone,) = _decode(path, [Window(3, 3.0, 4.0)])  # starts after the seek margin: seeks
    for a, b in zip(full.frames, alone.frames, strict=True):
        np.testing.assert_array_equal(a, b)
    # The resampler restarts on a different sample phase: allow half a 16 kHz sample of shift
    # (0.4 amplitude * 2 pi * 440 / 16000 * 0.5 = 0.035); a whole sample would give 0.069.
    assert np.abs(full.audio - alone.audio).max() < 0.04


def test_short_clip_is_padded_or_skipped(tmp_path):
    path = write_video(tmp_path / "short.mp4", seconds=2.5, audio_rate=44100)
    (padded,) = _decode(path, [Window(0, 1.0, 3.0)])
    assert padded.padded and padded.audio.shape == (32000,)
    assert np.abs(padded.audio[25000:]).max() == 0.0  # zeros past the source's end (2.5 s)
    assert _peak_amplitude(padded.audio[17600:22400]) == pytest.approx(amplitude_at(2.2), rel=0.05)
    last = padded.frames[-1]  # sampled at 2.75 s, after the end: the last frame (t = 2.4 s)
    assert np.abs(_centre(last) - colour_at(2.4)).max() < 12
    (skipped,) = _decode(
        path, [Window(0, 1.0, 3.0)], DecodeOptions(4, 32, min_seconds=0.5, pad_short=False)
    )
    assert isinstance(skipped, Skip) and skipped.reason == "too_short"
    (tiny,) = _decode(path, [Window(0, 2.2, 4.2)], OPTS)  # 0.3 s of content < min_seconds
    assert isinstance(tiny, Skip) and tiny.reason == "too_short"


def test_truncated_file_skips_the_missing_clips_as_truncated(tmp_path):
    path = write_video(tmp_path / "full.mkv", seconds=6.0, audio_rate=22050, layout="mono")
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert probe(str(cut)).duration == pytest.approx(6.0)  # the header still says 6 s
    clips = _decode(cut, clip_windows(6.0, 1.0, 0.5))
    kinds = [c.reason if isinstance(c, Skip) else "ok" for c in clips]
    assert kinds[0] == "ok" and kinds[-1] == "truncated" and len(kinds) == 6


def test_unusable_files_are_reported_not_raised(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(VideoSkipped) as err:
        probe(str(junk))
    assert err.value.reason == "corrupt"
    (skip,) = _decode_unprobed(junk)
    assert skip.reason == "corrupt"
    audio_only = write_video(tmp_path / "a.mkv", seconds=1.0, video=False)
    with pytest.raises(VideoSkipped) as err:
        probe(str(audio_only))
    assert err.value.reason == "no_video"


def _decode_unprobed(path):
    return list(decode_clips(str(path), [Window(0, 0.0, 1.0)], OPTS))


def test_video_without_audio_gets_silence(tmp_path):
    path = write_video(tmp_path / "mute.mp4", seconds=2.0, audio_rate=None)
    assert not probe(str(path)).has_audio
    clips = _decode(path, clip_windows(2.0, 1.0, 0.5))
    assert len(clips) == 2 and all(c.no_audio and not c.padded for c in clips)
    assert all(c.audio.shape == (16000,) and not c.audio.any() for c in clips)


def test_empty_audio_stream_is_no_audio(tmp_path):
    path = write_video(tmp_path / "e.mkv", seconds=2.0, audio_rate=22050, audio_seconds=0)
    assert probe(str(path)).has_audio  # the stream exists, with no packets
    windows = clip_windows(2.0, 1.0, 0.5)
    assert [c.reason for c in _decode(path, windows)] == ["no_audio", "no_audio"]
    opts = DecodeOptions(4, 32, min_seconds=0.5, silence_without_audio=True)
    clips = _decode(path, windows, opts)
    assert all(c.no_audio and not c.audio.any() for c in clips)


def test_audio_shorter_than_video_pads_the_clip_it_ends_in(tmp_path):
    path = write_video(tmp_path / "s.mkv", seconds=3.0, audio_rate=22050, audio_seconds=1.5)
    first, second, third = _decode(path, clip_windows(3.0, 1.0, 0.5))
    assert not first.padded and second.padded and isinstance(third, Skip)
    assert third.reason == "too_short" and "audio to 1.5" in third.detail
    assert second.audio[:7000].any() and not second.audio[8500:].any()


def test_overlapping_windows_are_cut_from_one_pass(tmp_path):
    path = write_video(tmp_path / "o.mkv", seconds=3.0, audio_rate=22050, layout="mono")
    first, second = _decode(path, [Window(1, 1.0, 3.0), Window(0, 0.0, 2.0)])
    assert (first.window.index, second.window.index) == (0, 1)  # handed out by start time
    np.testing.assert_array_equal(first.audio[16000:], second.audio[:16000])
    for clip in (first, second):
        for frame, t in zip(clip.frames, clip.frame_times, strict=True):
            assert np.abs(_centre(frame) - colour_at(clip.window.start + t)).max() < 12
