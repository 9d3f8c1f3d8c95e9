"""The worker half of audio_on_device: int16 roll-and-fit equals the float path it replaces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avpretrain.data.audio_codec import pcm16_to_float
from avpretrain.data.loading.audio import FbankConfig, fbank
from avpretrain.data.loading.augment import random_time_roll
from avpretrain.data.loading.samples import WaveformFeatures
from avpretrain.data.loading.worker_audio import (
    PCMWindow,
    device_waveform,
    fit_waveform,
    stack_waveforms,
    waveform_samples,
)

CFG = FbankConfig(target_frames=25)  # 4240 samples


def _samples(length: int) -> np.ndarray:
    rng = np.random.default_rng(length)
    tone = 8000 * np.sin(np.arange(length) * 0.07) + rng.normal(0, 300, length) + 900  # DC too
    return tone.astype(np.int16)


@pytest.mark.parametrize("length", [3000, 4240, 5000, 9000])
@pytest.mark.parametrize("roll", [False, True])
def test_int16_path_equals_the_float_path(length: int, roll: bool) -> None:
    samples = _samples(length)
    for seed in range(3):
        window, valid = device_waveform(
            samples, 16000, CFG, roll, 0.0, torch.Generator().manual_seed(seed)
        )
        assert isinstance(window, PCMWindow)
        wave = window.tensor()
        assert wave.dtype == torch.int16 and wave.shape == (waveform_samples(CFG),)
        reference = torch.from_numpy(pcm16_to_float(samples))
        if roll:
            reference = random_time_roll(reference, torch.Generator().manual_seed(seed))
        expected, expected_valid = fit_waveform(reference, CFG)
        assert valid == expected_valid == min(length, 4240)
        assert torch.equal(wave.float() / 32768, expected)


def test_resampling_or_gain_take_the_float_path() -> None:
    samples = _samples(9000)
    wave, valid = device_waveform(samples, 16000, CFG, False, 6.0, torch.Generator().manual_seed(0))
    assert wave.dtype == torch.float32 and valid == 4240
    scale = wave[:100] / torch.from_numpy(pcm16_to_float(samples[:100]))
    assert 0.5 <= float(scale.mean()) <= 2.0 and float(scale.std()) < 1e-5  # one gain
    wave, valid = device_waveform(samples, 32000, CFG)
    assert wave.dtype == torch.float32 and valid == 4240  # 9000 at 32 kHz is 4500 at 16 kHz
    # a batch mixing both (clips at other rates) is float32, the windows scaled to [-1, 1)
    window, _ = device_waveform(samples, 16000, CFG)
    mixed = stack_waveforms([window, wave])
    assert mixed.dtype == torch.float32 and torch.equal(mixed[0], window.tensor() / 32768)
    assert torch.equal(stack_waveforms([window, window]), torch.stack([window.tensor()] * 2))
    with pytest.raises(ValueError, match="shorter than one fbank window"):
        device_waveform(samples[:300], 16000, CFG)


def test_int16_batches_give_the_cpu_fbank() -> None:
    """Features of int16 waveforms (no clip mean removed in the worker) equal ``fbank``."""
    clips = [_samples(n) for n in (3000, 5000)]
    fitted = [device_waveform(c, 16000, CFG) for c in clips]
    batch = stack_waveforms([w for w, _ in fitted])
    assert batch.dtype == torch.int16
    lengths = torch.tensor([v for _, v in fitted])
    out = WaveformFeatures(CFG)(batch, lengths)
    for i, clip in enumerate(clips):
        expected = fbank(torch.from_numpy(pcm16_to_float(clip)), CFG)
        torch.testing.assert_close(out[i], expected, atol=1e-4, rtol=0)
