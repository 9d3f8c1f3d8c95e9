"""Loader throughput: samples/s per CPU core for each loader mode, side by side in one run.

Writes a small set of shards of 10 s clips in the stored format (10 JPEG frames at 256 px short
side, 16 kHz mono audio), once with FLAC audio and once with raw 16-bit PCM, and one 10 s
224 x 224 H.264 + AAC mp4, then times in one process with one torch thread (so samples/s is per
core; per CPU second of the process, so other load on the machine does not count), 224 px
training crops, batches of 8:

- ``naive mp4``: per sample, PyAV decodes the mp4 to a random frame and all of its audio,
  resamples to 16 kHz and computes the fbank and frame transform;
- ``cpu fbank (flac)``: the training pipeline with the Kaldi fbank in the worker;
- ``decode-only (flac)`` / ``decode-only (pcm)``: ``audio_on_device`` (the device fbank is not
  counted); frames decoded and cropped in the worker;
- ``bytes-only (pcm + jpeg)``: ``audio_on_device`` and ``frames_on_device`` on PCM shards: the
  worker reads the tar and slices bytes (the device's JPEG decode is not counted);
- ``tar read (pcm)``: reading and grouping the tar members alone, the floor of every mode.

It prints a markdown table. ``--workers N`` also times each pipeline mode through a DataLoader
with N workers, by the wall clock (on a busy machine that counts other processes' time too).
``--profile MODE`` runs cProfile on one mode instead.

    python scripts/bench_loader.py [--clips 48] [--seconds 3] [--workers 2] [--profile MODE]
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
from functools import partial
from pathlib import Path

import av
import numpy as np
import torch
import webdataset as wds

from avpretrain.data.loading.audio import FbankConfig, fbank, resample
from avpretrain.data.loading.pipeline import (
    SkipCounter,
    StreamSeed,
    build_pipeline,
    read_tar_samples,
)
from avpretrain.data.loading.samples import SampleOptions
from avpretrain.data.loading.video import frame_transform
from avpretrain.data.schema import encode_sample, make_meta
from avpretrain.data.shards import read_raw_samples, shard_name, write_index, write_shard

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


def write_bench_shards(folder: Path, clips: int, codec: str, per_shard: int = 16) -> None:
    """``clips`` 10 s clips, 10 frames of 256 x 341 each, audio in ``codec``, with an index."""
    rng = np.random.default_rng(0)
    frames = [synth_frame(rng, 256, 341) for _ in range(FRAMES)]
    times = [i * SECONDS / FRAMES for i in range(FRAMES)]
    samples = [
        encode_sample(
            f"clip{i:05d}",
            frames[i % 3 :] + frames[: i % 3],
            synth_audio(rng),
            make_meta(f"v{i}", 0.0, SECONDS, RATE, times, labels=[i % 4]),
            audio_codec=codec,
        )
        for i in range(clips)
    ]
    folder.mkdir(parents=True, exist_ok=True)
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


def audio_bytes(folder: Path) -> int:
    """Bytes of the audio members (``flac`` or ``pcm16``) in the shards of ``folder``."""
    return sum(
        len(sample.get("flac", sample.get("pcm16", b"")))
        for shard in sorted(folder.glob("*.tar"))
        for sample in read_raw_samples(shard)
    )


def one(_: object) -> int:
    """Samples in an item that is a single sample."""
    return 1


def batch_samples(batch: dict) -> int:
    """Samples in a batch."""
    return len(batch["key"])


def rate(
    items: Iterable,
    count: Callable[[object], int],
    min_seconds: float,
    clock: Callable[[], float] = time.process_time,
) -> float:
    """Samples per second of ``clock``, consuming ``items`` for at least ``min_seconds`` after a
    warm-up. The default clock is this process's CPU time, not wall time: on a shared machine
    the wall clock also counts the time other processes held the core."""
    it = iter(items)
    count(next(it))  # warm-up: opening shards, first allocations
    done, start = 0, clock()
    for item in it:
        done += count(item)
        if clock() - start >= min_seconds:
            break
    return done / (clock() - start)


def pipeline(folder: Path, batch_size: int = 8, **options: bool) -> wds.DataPipeline:
    """The training pipeline over the shards in ``folder`` (224 px crops, endless)."""
    opts = SampleOptions(train=True, **options)
    urls = [str(p) for p in sorted(folder.glob("*.tar"))]
    return build_pipeline(urls, opts, batch_size, StreamSeed(), SkipCounter(), resampled=True)


def tar_read(folder: Path) -> wds.DataPipeline:
    """Raw samples (bytes by member) of the shards in ``folder``, endless: the floor."""
    urls = [str(p) for p in sorted(folder.glob("*.tar"))]
    shards = wds.ResampledShards(urls, worker_seed=StreamSeed().local, deterministic=True)
    return wds.DataPipeline(shards, partial(read_tar_samples, handler=SkipCounter()))


# mode -> (shard codec, pipeline options); None: the tar read alone
MODES: dict[str, tuple[str, dict[str, bool] | None]] = {
    "cpu fbank (flac)": ("flac", {}),
    "decode-only (flac)": ("flac", {"audio_on_device": True}),
    "decode-only (pcm)": ("pcm", {"audio_on_device": True}),
    "bytes-only (pcm + jpeg)": ("pcm", {"audio_on_device": True, "frames_on_device": True}),
    "tar read (pcm)": ("pcm", None),
}


def mode_items(root: Path, mode: str) -> tuple[Iterable, Callable[[object], int]]:
    """The items of ``mode`` and how many samples each is."""
    codec, options = MODES[mode]
    if options is None:
        return tar_read(root / codec), one
    return pipeline(root / codec, **options), batch_samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=48, help="clips to write")
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per mode")
    parser.add_argument("--workers", type=int, default=0, help="also time N DataLoader workers")
    parser.add_argument("--profile", choices=sorted(MODES), help="cProfile this mode")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sizes = {}
        for codec in ("flac", "pcm"):
            write_bench_shards(root / codec, args.clips, codec)
            sizes[codec] = sum(p.stat().st_size for p in (root / codec).glob("*.tar"))
        write_mp4(root / "naive.mp4")
        kib = {c: v / args.clips / 1024 for c, v in sizes.items()}
        audio = {c: audio_bytes(root / c) for c in ("flac", "pcm")}
        print(
            f"{args.clips} clips of {SECONDS:g} s; KiB per clip: flac {kib['flac']:.0f}, "
            f"pcm {kib['pcm']:.0f}; pcm / flac: shards {sizes['pcm'] / sizes['flac']:.2f}, "
            f"audio members {audio['pcm'] / audio['flac']:.2f}; "
            f"1 torch thread, {args.seconds:g} CPU s per mode"
        )
        if args.profile:
            items, count = mode_items(root, args.profile)
            profiler = cProfile.Profile()
            profiler.runcall(rate, items, count, args.seconds)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
            return 0
        results = {}
        g = torch.Generator().manual_seed(0)
        mp4 = root / "naive.mp4"
        naive = (naive_sample(mp4, FbankConfig(), g) for _ in itertools.repeat(None))
        results["naive mp4"] = (rate(naive, one, args.seconds), 1)
        for mode in MODES:
            results[mode] = (rate(*mode_items(root, mode), args.seconds), 1)
        for mode in list(MODES)[:-1] if args.workers else []:
            codec, options = MODES[mode]
            loader = torch.utils.data.DataLoader(
                pipeline(root / codec, **options), batch_size=None, num_workers=args.workers
            )
            counted = rate(loader, batch_samples, args.seconds, time.perf_counter)
            results[f"{mode} x{args.workers} workers"] = (counted, args.workers)
        print_table(results)
    return 0


def print_table(results: dict[str, tuple[float, int]]) -> None:
    """Markdown table: samples/s, per core, ms per sample per core, vs naive and vs the floor."""
    naive, floor = results["naive mp4"][0], results["tar read (pcm)"][0]
    print("| mode | samples/s | per core | ms / sample / core | vs naive | time vs tar read |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (value, cores) in results.items():
        per_core = value / cores
        print(
            f"| {name} | {value:.1f} | {per_core:.1f} | {1000 / per_core:.2f} | "
            f"{value / naive:.1f}x | {floor / per_core:.2f}x |"
        )


if __name__ == "__main__":
    raise SystemExit(main())
