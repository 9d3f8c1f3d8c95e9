"""Loader throughput: samples/s per CPU core from shards, against decoding an mp4 per sample.

Writes a small set of shards of 10 s clips in the stored format (10 JPEG frames at 256 px short
side, 16 kHz FLAC) and one 10 s 224 x 224 H.264 + AAC mp4, then times, in one process with one
torch thread (so samples/s is per core):

- ``cpu-fbank``: the training pipeline with the Kaldi fbank in the worker (``audio``);
- ``decode-only``: accelerator mode (``waveform``; the device fbank is not counted);
- ``naive-mp4``: per sample, PyAV decodes the mp4 to the chosen frame and all of its audio,
  resamples to 16 kHz and computes the same fbank and frame transform.

Optionally (``--workers N``) the pipeline is also timed through a DataLoader with N workers.

    python scripts/bench_loader.py [--clips 48] [--seconds 8] [--workers 2] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import pstats
import tempfile
import time
from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from avpretrain.data.audio import FbankConfig, fbank, resample
from avpretrain.data.pipeline import SkipCounter, StreamSeed, build_pipeline
from avpretrain.data.samples import SampleOptions
from avpretrain.data.schema import encode_sample, make_meta
from avpretrain.data.shards import shard_name, write_index, write_shard
from avpretrain.data.video import frame_transform

SECONDS, RATE, FRAMES = 10.0, 16000, 10


def synth_frame(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth colour field with texture, compressing about like a natural frame."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, 3)
    base = [127 + 80 * np.sin(x / rng.uniform(20, 80) + y / rng.uniform(20, 80) + p) for p in phase]
    img = np.stack(base, -1) + rng.normal(0, 12, (height, width, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def synth_audio(rng: np.random.Generator, seconds: float = SECONDS) -> np.ndarray:
    """A few tones with noise: [samples] float in [-1, 1]."""
    t = np.arange(int(seconds * RATE)) / RATE
    tones = sum(0.2 * np.sin(2 * np.pi * rng.uniform(100, 3000) * t) for _ in range(3))
    return (tones + 0.05 * rng.standard_normal(t.shape[0])).clip(-1, 1)


def write_bench_shards(folder: Path, clips: int, per_shard: int = 16) -> None:
    """``clips`` 10 s clips, 10 frames of 256 x 341 each, in shards with an index."""
    rng = np.random.default_rng(0)
    frames = [synth_frame(rng, 256, 341) for _ in range(FRAMES)]
    times = [i * SECONDS / FRAMES for i in range(FRAMES)]
    samples = [
        encode_sample(
            f"clip{i:05d}",
            frames[i % 3 :] + frames[: i % 3],
            synth_audio(rng),
            make_meta(f"v{i}", 0.0, SECONDS, RATE, times, labels=[i % 4]),
        )
        for i in range(clips)
    ]
    for s in range(0, clips, per_shard):
        write_shard(folder / shard_name("bench", s // per_shard), samples[s : s + per_shard])
    write_index(folder)


def write_mp4(path: Path, size: int = 224, fps: int = 25) -> None:
    """A 10 s H.264 + AAC (48 kHz stereo) mp4 of the same kind of content."""
    rng = np.random.default_rng(1)
    frames = [synth_frame(rng, size, size) for _ in range(8)]
    audio = synth_audio(rng)
    audio48 = resample(torch.from_numpy(audio).float(), RATE, 48000).numpy()
    with av.open(str(path), "w") as out:
        video = out.add_stream("h264", rate=fps)
        video.width = video.height = size
        video.pix_fmt = "yuv420p"
        sound = out.add_stream("aac", rate=48000)
        sound.layout = "stereo"
        for i in range(int(SECONDS * fps)):
            frame = av.VideoFrame.from_ndarray(frames[(i // fps) % len(frames)], format="rgb24")
            out.mux(video.encode(frame))
        for start in range(0, audio48.shape[0], 1024):
            chunk = np.repeat(audio48[None, start : start + 1024], 2, 0).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = 48000, start, Fraction(1, 48000)
            out.mux(sound.encode(frame))
        out.mux(video.encode())
        out.mux(sound.encode())


def naive_sample(path: Path, cfg: FbankConfig, generator: torch.Generator) -> dict:
    """Decode an mp4 per sample: a random frame (decoding up to it) and all of the audio."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        target = int(torch.randint(stream.frames or 250, (1,), generator=generator))
        image = None
        for i, frame in enumerate(container.decode(stream)):
            if i == target:
                image = torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)
                break
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=cfg.sample_rate)
        chunks = [
            r.to_ndarray()[0]
            for frame in container.decode(audio=0)
            for r in resampler.resample(frame)
        ]
    audio = torch.from_numpy(np.concatenate(chunks))
    video = frame_transform(image.contiguous(), 224, True, generator)
    return {"audio": fbank(audio, cfg), "video": video}


def one(_: object) -> int:
    """Samples in an item that is a single sample."""
    return 1


def batch_samples(batch: dict) -> int:
    """Samples in a batch."""
    return len(batch["key"])


def rate(items: Iterable, count: Callable[[object], int], min_seconds: float) -> float:
    """Items per second, consuming ``items`` for at least ``min_seconds`` after a warm-up."""
    it = iter(items)
    count(next(it))  # warm-up: opening shards, first allocations
    done, start = 0, time.perf_counter()
    for item in it:
        done += count(item)
        if time.perf_counter() - start >= min_seconds:
            break
    return done / (time.perf_counter() - start)


def pipeline(folder: Path, accelerator: bool, batch_size: int = 8):
    opts = SampleOptions(train=True, audio_on_device=accelerator)
    urls = [str(p) for p in sorted(folder.glob("*.tar"))]
    return build_pipeline(urls, opts, batch_size, StreamSeed(), SkipCounter(), resampled=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=48, help="clips to write")
    parser.add_argument("--seconds", type=float, default=8.0, help="timing per mode")
    parser.add_argument("--workers", type=int, default=0, help="also time N DataLoader workers")
    parser.add_argument("--profile", action="store_true", help="cProfile the cpu-fbank mode")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_bench_shards(folder, args.clips)
        write_mp4(folder / "naive.mp4")
        size = sum(p.stat().st_size for p in folder.glob("*.tar")) / args.clips / 1024
        print(f"{args.clips} clips, {size:.0f} KiB per clip in shards; 1 torch thread")

        results = {}
        g = torch.Generator().manual_seed(0)
        mp4 = folder / "naive.mp4"
        naive = (naive_sample(mp4, FbankConfig(), g) for _ in itertools.repeat(None))
        results["naive-mp4"] = (rate(naive, one, args.seconds), 1)
        for name, accel in (("cpu-fbank", False), ("decode-only", True)):
            batches = pipeline(folder, accel)
            results[name] = (rate(batches, batch_samples, args.seconds), 1)
        if args.workers:
            for name, accel in (("cpu-fbank", False), ("decode-only", True)):
                loader = torch.utils.data.DataLoader(
                    pipeline(folder, accel), batch_size=None, num_workers=args.workers
                )
                label = f"{name} x{args.workers} workers"
                counted = rate(loader, batch_samples, args.seconds)
                results[label] = (counted, args.workers)
        base = results["naive-mp4"][0]
        print(f"{'mode':<26}{'samples/s':>11}{'per core':>10}{'vs naive':>10}")
        for name, (value, cores) in results.items():
            print(f"{name:<26}{value:>11.1f}{value / cores:>10.1f}{value / base:>9.1f}x")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(rate, pipeline(folder, False), batch_samples, args.seconds)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
