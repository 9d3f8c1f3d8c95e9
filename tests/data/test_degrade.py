"""Synthetic quality degradations: identity at 0, monotone damage, monotone MOS model."""

import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from avpretrain.data.synthetic.degrade import (
    AV_FUSION,
    Severity,
    audio_noise,
    bandlimit,
    bandlimit_cutoff,
    blur,
    clipping,
    degrade_audio,
    degrade_video,
    exposure,
    jpeg,
    jpeg_quality,
    mos_model,
    stutter,
    video_noise,
)

LEVELS = (0.25, 0.5, 0.75, 1.0)
SR = 16_000


def _frames(n=3, size=32):
    # smooth shapes plus fine texture, so blur and JPEG have something to destroy
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size] / size
    base = 110 + 60 * np.sin(6 * x + 3 * y)[..., None] * np.array([1.0, 0.7, 0.4])
    frames = base[None] + 25 * rng.standard_normal((n, size, size, 3))
    return np.clip(frames, 0, 255).astype(np.uint8)


def _audio(seconds=0.5):
    rng = np.random.default_rng(1)
    t = np.arange(int(SR * seconds)) / SR
    tones = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((220, 1000, 3000, 6000), 1))
    return (0.3 * tones + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def psnr(ref, x):
    mse = np.mean((ref.astype(np.float64) - x.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def snr_db(ref, x):
    ref = ref.astype(np.float64)
    err = np.sum((x.astype(np.float64) - ref) ** 2)
    return math.inf if err == 0 else 10 * math.log10(np.sum(ref**2) / err)


VIDEO_FUNCS = {
    "blur": blur,
    "exposure": exposure,
    "darken": lambda f, s: exposure(f, s, darken=True),
    "video_noise": video_noise,
    "jpeg": jpeg,
    "stutter": stutter,
}
AUDIO_FUNCS = {
    "audio_noise": audio_noise,
    "clipping": clipping,
    "bandlimit": lambda a, s: bandlimit(a, s, SR),
}


@pytest.mark.parametrize("name", VIDEO_FUNCS)
def test_video_identity_at_zero_and_psnr_falls(name):
    frames = _ramp_video() if name == "stutter" else _frames()
    func = VIDEO_FUNCS[name]
    out = func(frames, 0.0)
    assert out is not frames and np.array_equal(out, frames)
    scores = [psnr(frames, func(frames, s)) for s in LEVELS]
    assert all(a > b for a, b in zip(scores, scores[1:], strict=False)), scores
    assert func(frames, 1.0).shape == frames.shape and func(frames, 1.0).dtype == np.uint8


def _ramp_video():
    # frame t is uniformly 10 t: the error of holding a frame grows with how long it is held
    return np.broadcast_to(
        (10 * np.arange(12, dtype=np.uint8))[:, None, None, None], (12, 4, 4, 3)
    ).copy()


def test_stutter_holds_frames():
    frames = _ramp_video()
    # severity 0.5: hold = 1 + round(4 * 0.5) = 3 frames
    shown = stutter(frames, 0.5)[:, 0, 0, 0] // 10
    assert shown.tolist() == [0, 0, 0, 3, 3, 3, 6, 6, 6, 9, 9, 9]


def test_blur_matches_a_separable_gaussian():
    frames = _frames(n=1)
    out = blur(frames, 0.5)  # sigma 2 px
    expected = np.stack(
        [gaussian_filter(frames[0, ..., c].astype(float), 2.0) for c in range(3)], -1
    )
    assert np.abs(out[0].astype(float) - expected).max() <= 0.5 + 1e-9


def test_jpeg_quality_mapping():
    assert jpeg_quality(1.0) == 5 and jpeg_quality(1e-9) == 90 and jpeg_quality(0.5) == 48


@pytest.mark.parametrize("name", AUDIO_FUNCS)
def test_audio_identity_at_zero_and_snr_falls(name):
    audio = _audio()
    func = AUDIO_FUNCS[name]
    out = func(audio, 0.0)
    assert out is not audio and np.array_equal(out, audio)
    scores = [snr_db(audio, func(audio, s)) for s in LEVELS]
    assert all(a > b for a, b in zip(scores, scores[1:], strict=False)), scores
    assert func(audio, 1.0).dtype == audio.dtype


def test_audio_noise_hits_the_target_snr():
    audio = _audio()
    # severity 0.25: 40 dB * 0.75 = 30 dB, exactly (the noise is scaled to the signal power)
    assert snr_db(audio, audio_noise(audio, 0.25)) == pytest.approx(30.0, abs=0.01)


def test_clipping_and_cutoff_by_hand():
    audio = np.array([0.0, 0.5, -1.0, 0.2], dtype=np.float32)
    # severity 0.5: limit = 1.0 * (1 - 0.95 * 0.5) = 0.525
    assert clipping(audio, 0.5).tolist() == pytest.approx([0.0, 0.5, -0.525, 0.2])
    assert bandlimit_cutoff(1.0, SR) == pytest.approx(250.0)
    assert bandlimit_cutoff(0.5, SR) == pytest.approx(math.sqrt(7200 * 250))


def test_bandlimit_removes_high_frequencies():
    t = np.arange(SR // 2) / SR
    high = np.sin(2 * np.pi * 4000 * t)
    low = np.sin(2 * np.pi * 100 * t)
    out = bandlimit(low + high, 1.0, SR)  # cutoff 250 Hz
    mid = slice(1000, -1000)  # away from the edges' transients
    assert np.abs(out[mid] - low[mid]).max() < 0.02


def test_mos_model_clean_and_by_hand():
    assert mos_model(Severity()) == {"overall": 100.0, "video": 100.0, "audio": 100.0}
    out = mos_model(Severity(blur=0.5, audio_noise=1.0))
    # video 100 * (1 - 0.6 * 0.5) = 70; audio 100 * (1 - 0.6) = 40
    assert out["video"] == pytest.approx(70.0)
    assert out["audio"] == pytest.approx(40.0)
    assert out["overall"] == pytest.approx(0.55 * 70 + 0.25 * 40 + 0.20 * 70 * 40 / 100)


@pytest.mark.parametrize("name", Severity.VIDEO + Severity.AUDIO)
def test_mos_model_monotone_in_every_severity(name):
    rng = np.random.default_rng(sum(map(ord, name)))
    for _ in range(5):
        base = {k: float(rng.uniform(0, 1)) for k in Severity.VIDEO + Severity.AUDIO}
        values = [mos_model(Severity(**{**base, name: s})) for s in (0.0, *LEVELS)]
        modality = "video" if name in Severity.VIDEO else "audio"
        for key in ("overall", modality):
            series = [v[key] for v in values]
            assert all(a > b for a, b in zip(series, series[1:], strict=False)), (key, series)
        other = "audio" if modality == "video" else "video"
        assert len({round(v[other], 12) for v in values}) == 1


def test_video_weighs_more_than_audio():
    video_hit = mos_model(Severity(blur=1.0))
    audio_hit = mos_model(Severity(audio_noise=1.0))  # same weight 0.6 on its own modality
    assert video_hit["video"] == audio_hit["audio"]
    assert video_hit["overall"] < audio_hit["overall"]
    assert sum(AV_FUSION) == pytest.approx(1.0)


def test_pipelines_and_validation():
    frames, audio = _frames(), _audio()
    sev = Severity(blur=0.3, exposure=0.2, video_noise=0.1, jpeg=0.5, stutter=0.5, darken=True)
    assert degrade_video(frames, sev).shape == frames.shape
    assert np.array_equal(degrade_video(frames, Severity()), frames)
    sev_a = Severity(audio_noise=0.5, clipping=0.3, bandlimit=0.4)
    assert snr_db(audio, degrade_audio(audio, sev_a, SR)) < snr_db(audio, audio_noise(audio, 0.5))
    with pytest.raises(ValueError, match="blur must be in"):
        Severity(blur=1.5)
    with pytest.raises(ValueError, match=r"\[F, H, W, 3\]"):
        blur(frames[0], 0.5)
    with pytest.raises(ValueError, match="uint8"):
        blur(frames.astype(np.float32), 0.5)
    with pytest.raises(ValueError, match="float"):
        clipping(np.zeros((2, 10)), 0.5)
