import math

import pytest
import torch
import torchaudio

from avpretrain.data.loading.audio import BatchedFbank, FbankConfig, fbank, normalize, resample

MEAN, STD = -4.268, 4.569


def tone(freq: float, seconds: float, sr: int, amp: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(seconds * sr), dtype=torch.float64) / sr
    return (amp * torch.sin(2 * math.pi * freq * t)).float()


def mel_centres(num_bins: int, sr: int) -> list[float]:
    """Kaldi's mel bin centres by hand: HTK mel, evenly spaced from 20 Hz to Nyquist."""
    mel = lambda f: 1127.0 * math.log(1.0 + f / 700.0)  # noqa: E731
    lo, hi = mel(20.0), mel(sr / 2)
    step = (hi - lo) / (num_bins + 1)
    return [700.0 * (math.exp((lo + (k + 1) * step) / 1127.0) - 1.0) for k in range(num_bins)]


def reference(wave: torch.Tensor, sr: int, length_ms: float, shift_ms: float) -> torch.Tensor:
    """Direct kaldi.fbank call with the DESIGN parameters, normalised: [M, 128]."""
    feats = torchaudio.compliance.kaldi.fbank(
        (wave - wave.mean())[None],
        htk_compat=True,
        sample_frequency=sr,
        use_energy=False,
        window_type="hanning",
        num_mel_bins=128,
        dither=0.0,
        frame_shift=shift_ms,
        frame_length=length_ms,
    )
    return (feats - MEAN) / (2 * STD)


def test_presets() -> None:
    paper = FbankConfig.paper()
    assert (paper.sample_rate, paper.window_size, paper.window_shift) == (8000, 400, 200)
    assert paper.output_frames == 128 and paper.num_samples(10) == 80000
    audioset = FbankConfig.audioset()
    assert (audioset.window_size, audioset.window_shift, audioset.fft_size) == (400, 160, 512)
    assert audioset.num_frames(audioset.num_samples(10)) == 998


@pytest.mark.parametrize("seconds", [10.0, 5.0, 12.0])
def test_fbank_matches_kaldi_with_pad_or_cut(seconds: float) -> None:
    cfg = FbankConfig.audioset()
    wave = 0.1 * torch.randn(int(seconds * 16000), generator=torch.Generator().manual_seed(0))
    out = fbank(wave, cfg)
    assert out.shape == (1, 128, 1024)
    ref = reference(wave, 16000, 25.0, 10.0)
    n = min(ref.shape[0], 1024)
    torch.testing.assert_close(out[0, :, :n], ref[:n].T, atol=1e-5, rtol=0)
    # Zero padding happens before normalisation (AudioMAE), so padded frames hold normalize(0).
    torch.testing.assert_close(out[0, :, n:], torch.full((128, 1024 - n), -MEAN / (2 * STD)))


def test_silence_is_constant_log_floor() -> None:
    out = fbank(torch.zeros(16000), FbankConfig.audioset())
    log_eps = math.log(torch.finfo(torch.float32).eps)
    torch.testing.assert_close(
        out[..., :98], torch.full((1, 128, 98), (log_eps - MEAN) / (2 * STD))
    )


def test_normalize_constant() -> None:
    v = torch.full((3, 4), 2.5)
    torch.testing.assert_close(
        normalize(v, FbankConfig()), torch.full((3, 4), (2.5 + 4.268) / 9.138)
    )


@pytest.mark.parametrize(("sr", "freq"), [(16000, 440.0), (16000, 3000.0), (8000, 1234.0)])
def test_tone_peaks_in_nearest_mel_bin(sr: int, freq: float) -> None:
    cfg = FbankConfig.audioset() if sr == 16000 else FbankConfig.paper()
    out = fbank(tone(freq, 2.0, sr), cfg)
    frames = cfg.num_frames(2 * sr)
    peak = out[0, :, :frames].mean(dim=1).argmax().item()
    centres = mel_centres(128, sr)
    assert peak == min(range(128), key=lambda k: abs(centres[k] - freq))


def test_paper_preset_shape_and_resize() -> None:
    cfg = FbankConfig.paper()
    wave = tone(700.0, 10.0, 8000)
    out = fbank(wave, cfg)
    assert out.shape == (1, 128, 128)
    ref = reference(wave, 8000, 50.0, 25.0)  # 399 frames, padded to 400 then resized
    padded = torch.cat([ref, torch.full((1, 128), -MEAN / (2 * STD))]).T[None]
    resized = torch.nn.functional.interpolate(padded, size=128, mode="linear")
    torch.testing.assert_close(out, resized, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "cfg", [FbankConfig.audioset(), FbankConfig.paper()], ids=["audioset", "paper"]
)
def test_batched_matches_per_sample(cfg: FbankConfig) -> None:
    sr, n = cfg.sample_rate, cfg.num_samples(4.0)
    g = torch.Generator().manual_seed(1)
    waves = torch.stack(
        [
            0.1 * torch.randn(n, generator=g),
            tone(440.0, 4.0, sr),
            tone(1500.0, 4.0, sr, amp=0.05) + 0.01 * torch.randn(n, generator=g) + 0.2,
            torch.zeros(n),
        ]
    )
    out = BatchedFbank(cfg)(waves)
    assert out.shape == (4, 1, 128, cfg.output_frames) and out.dtype == torch.float32
    for i in range(4):
        torch.testing.assert_close(out[i], fbank(waves[i], cfg), atol=1e-4, rtol=0)


def test_batched_cuts_long_clips_and_takes_half_precision() -> None:
    cfg = FbankConfig(target_frames=50)
    waves = 0.1 * torch.randn(2, 16000, generator=torch.Generator().manual_seed(2))
    out = BatchedFbank(cfg)(waves.half())
    assert out.shape == (2, 1, 128, 50) and out.dtype == torch.float32
    torch.testing.assert_close(out[1], fbank(waves[1].half().float(), cfg), atol=1e-4, rtol=0)


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="fewer than one"):
        fbank(torch.zeros(100), FbankConfig())
    with pytest.raises(ValueError, match="mono"):
        fbank(torch.zeros(2, 16000), FbankConfig())


def test_resample_preserves_tone() -> None:
    out = resample(tone(500.0, 1.0, 16000), 16000, 8000)
    assert out.shape == (8000,)
    torch.testing.assert_close(out[100:-100], tone(500.0, 1.0, 8000)[100:-100], atol=2e-3, rtol=0)
    same = torch.ones(10)
    assert resample(same, 8000, 8000) is same
