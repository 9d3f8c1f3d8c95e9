r"""``avpretrain curate``: score every clip of a shard set, filter, write curated shards and a report.

Example::

    avpretrain curate data/synth/train --out data/curated --embedder own --encoders enc.pt \
        --clap models/clap --clip models/clip --thresholds audio_visual=0.2,temporal=0.2 --quantile

The own model scores captions too when given the text tower of a retrieval task fitted on its
encoders (``--text-encoder text_tower.pt``, see :mod:`avpretrain.curation.text_tower`): the
``text_av`` score, caption vs the fused clip in the retrieval head's space.

Output folder::

    <shard>.tar ... index.json     kept clips, same schema, every JSON's ``scores`` filled
    scores/<shard>.json            per-shard score cache: a rerun rescoring nothing but new shards
    report.json report.md hist_*.png

Scoring is the expensive part, so it is cached per shard (keyed by the embedders used); a rerun
with other thresholds only refilters and rewrites, which is cheap.

Bad data is skipped and counted as the training loader does (:class:`SkipCounter`): a sample
whose JSON, audio or frames cannot be decoded, or the rest of a shard after a tar error. The
count goes into the summary line, ``report.json`` and the output index; a run where no clip at
all can be read fails.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from avpretrain.curation.embedders import AV_SPACES, AVMAEEmbedder, supports
from avpretrain.curation.filter import STAGES, filter_scores, parse_thresholds
from avpretrain.curation.plugins import load_plugin
from avpretrain.curation.report import write_report
from avpretrain.curation.scores import ClipInput, ScoreModels, score_clips
from avpretrain.curation.text_tower import load_text_tower
from avpretrain.data.audio_codec import decode_audio
from avpretrain.data.loading.pipeline import SkipCounter
from avpretrain.data.loading.video import decode_jpeg
from avpretrain.data.schema import JSON_EXT, frame_exts
from avpretrain.data.shards import read_index, read_raw_samples, write_index, write_shard

log = logging.getLogger(__name__)
SCORES_DIR = "scores"


def decode_clip(sample: dict[str, Any], shard: str) -> tuple[ClipInput, dict[str, Any]]:
    """A raw sample as the scorer's input, with its JSON record.

    Raises:
        ValueError: naming the shard and key, when a member is missing or undecodable.
    """
    key = sample["__key__"]
    try:
        meta = json.loads(sample[JSON_EXT])
        if not isinstance(meta, dict):
            raise ValueError(f"the JSON record is {type(meta).__name__}, not an object")
        waveform, rate = decode_audio(sample, meta)
        exts = frame_exts(sample)
        if not exts:
            raise ValueError("no frames")
        frames = torch.stack([decode_jpeg(sample[e]) for e in exts])
        times = meta.get("frame_times") or [_mid_time(meta)] * len(exts)
        clip = ClipInput(key, waveform, rate, frames, list(times), meta.get("caption"))
    except Exception as err:  # noqa: BLE001 - corrupt data of any kind, as the loader
        raise ValueError(f"{shard}: sample {key!r}: {type(err).__name__}: {err}") from err
    return clip, meta


def _mid_time(meta: dict[str, Any]) -> float:
    """Middle of the clip from its ``start`` and ``end`` (frames without ``frame_times``)."""
    for field in ("start", "end"):
        if not isinstance(meta.get(field), int | float):
            raise ValueError(
                f"field {field!r} is {meta.get(field)!r}: a number is needed when the record "
                f"has no frame_times"
            )
    return (meta["end"] - meta["start"]) / 2.0


def score_shard(
    path: Path, models: ScoreModels, batch_size: int, skipped: set[str], bad: SkipCounter
) -> list[dict[str, Any]]:
    """Per clip ``{key, category, corruption, scores}`` of one shard, scored in batches.

    ``corruption`` is the synthetic world's ground truth (``swap_audio``, ``shift_audio``,
    ``swap_caption``, ``"clean"``), None for real data; the report counts what the filter removed.
    Undecodable samples, and the rest of the shard after a tar error, are logged and counted in
    ``bad`` and left out.
    """
    records: list[dict[str, Any]] = []
    batch: list[ClipInput] = []

    def flush() -> None:
        scores = score_clips(batch, models, skipped)
        for record, clip_scores in zip(records[-len(batch) :], scores, strict=True):
            record["scores"] = clip_scores
        batch.clear()

    bad.shard = str(path)
    try:
        for sample in read_raw_samples(path):
            try:
                clip, meta = decode_clip(sample, str(path))
            except ValueError as err:
                bad.sample_error(sample.get("__key__"), str(path), err.__cause__ or err)
                continue
            synthetic = meta.get("synthetic")
            corruption = (
                (synthetic.get("corruption") or "clean") if isinstance(synthetic, dict) else None
            )
            records.append(
                {"key": clip.key, "category": meta.get("category"), "corruption": corruption}
            )
            batch.append(clip)
            if len(batch) >= batch_size:
                flush()
    except ValueError as err:  # the tar itself: the rest of the shard is unreadable
        bad(err)
    if batch:
        flush()
    return records


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def cached_scores(
    shards: list[dict[str, Any]],
    out: Path,
    models: ScoreModels,
    signature: dict[str, Any],
    batch_size: int,
    bad: SkipCounter,
) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """Scores of every shard, from ``out/scores/`` when cached with the same embedders.

    Returns:
        ``(scores by shard name, samples or shard parts skipped as unreadable)``; those of the
        shards scored now are also counted (and the latest logged) in ``bad``.
    """
    cache_dir = out / SCORES_DIR
    cache_dir.mkdir(parents=True, exist_ok=True)
    skipped: set[str] = set()
    result = {}
    unreadable = 0
    for shard in tqdm(shards, desc="scoring", unit="shard", disable=None):
        cache = cache_dir / f"{shard['name']}.json"
        if cache.exists():
            data = json.loads(cache.read_text())
            if data.get("embedders") == signature:
                log.info("curation: %s scores cached, not rescored", shard["name"])
                result[shard["name"]] = data["clips"]
                unreadable += data.get("unreadable", 0)
                continue
        before = bad.total
        records = score_shard(Path(shard["url"]), models, batch_size, skipped, bad)
        lost = bad.total - before
        _write_json(cache, {"embedders": signature, "clips": records, "unreadable": lost})
        log.info(
            "curation: scored %s (%d clips, %d unreadable skipped)",
            shard["name"],
            len(records),
            lost,
        )
        result[shard["name"]] = records
        unreadable += lost
    return result, unreadable


def _with_scores(
    url: str, keep: set[str], scores: dict[str, dict[str, float | None]]
) -> Iterator[dict[str, Any]]:
    """The kept raw samples of one shard, each JSON record's ``scores`` filled.

    A tar error ends the shard: what follows it was unreadable when scoring too, so kept nothing.
    """
    try:
        for sample in read_raw_samples(url):
            if sample["__key__"] in keep:
                meta = json.loads(sample[JSON_EXT])
                meta["scores"] = scores[sample["__key__"]]
                yield {**sample, JSON_EXT: json.dumps(meta).encode("utf-8")}
    except ValueError as err:
        log.warning("curation: %s", err)


def write_curated(
    shards: list[dict[str, Any]],
    out: Path,
    scored: dict[str, list[dict]],
    keep: dict[tuple[str, str], bool],
) -> dict[str, int]:
    """Write the kept clips of every shard to ``out`` with their scores; return counts by name.

    Args:
        shards: the input index's shard records (``name``, ``url``).
        out: output folder.
        scored: per shard name, its clips' ``{key, scores, ...}``.
        keep: the filter's decision by ``(shard name, key)``.
    """
    counts = {}
    for shard in tqdm(shards, desc="writing", unit="shard", disable=None):
        name = shard["name"]
        scores = {r["key"]: r["scores"] for r in scored[name]}
        kept = {k for k in scores if keep[(name, k)]}
        target = out / name
        if not kept:
            log.info("curation: %s keeps no clip; no shard written", name)
            target.unlink(missing_ok=True)  # a stale one from a looser earlier run
            continue
        counts[name] = write_shard(target, _with_scores(shard["url"], kept, scores))
    return counts


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="avpretrain curate",
        description="Score every clip of a shard set for audio-visual-text alignment, filter, "
        "and write curated shards with a report.",
    )
    p.add_argument("shards", help="input shard folder (with index.json) or its index.json")
    p.add_argument("--out", required=True, help="output folder for curated shards and report")
    p.add_argument(
        "--embedder",
        choices=("own", "none"),
        default="own",
        help="audio-visual embedder for instance and temporal scores (own: --encoders)",
    )
    p.add_argument("--encoders", help="encoder file from `avpretrain export` (--embedder own)")
    p.add_argument(
        "--text-encoder",
        help="text tower file (python -m avpretrain.curation.text_tower) or a retrieval task "
        "checkpoint (with --text-config) for the own model's text_av caption score",
    )
    p.add_argument("--text-config", help="the fit YAML of a --text-encoder checkpoint")
    p.add_argument(
        "--av-space",
        choices=AV_SPACES,
        default="pooled",
        help="space of the own model's instance and temporal scores: the encoders' pooled "
        "embeddings, or the --text-encoder's audio and video projections (retrieval)",
    )
    p.add_argument("--clap", help="local CLAP folder for text-audio scores")
    p.add_argument(
        "--plugin",
        help="MODULE:CALLABLE returning an embedder (e.g. ImageBind) for every pair of "
        "modalities it embeds that no other flag fills; called as CALLABLE(plugin_arg, device)",
    )
    p.add_argument("--plugin-arg", help="the argument given to --plugin (e.g. a weights file)")
    p.add_argument("--clip", help="local CLIP folder for text-visual scores")
    p.add_argument(
        "--thresholds",
        default="",
        help="NAME=VALUE,... with NAME in audio_visual, temporal, text_audio, text_visual, text_av",
    )
    p.add_argument(
        "--quantile",
        action="store_true",
        help="read thresholds as quantiles: drop that lowest fraction at each stage",
    )
    p.add_argument(
        "--stages", default=",".join(STAGES), help="stages switched on (instance,temporal,language)"
    )
    p.add_argument("--batch-size", type=int, default=32, help="clips scored per batch")
    p.add_argument("--device", default="cpu", help="torch device for the embedders")
    return p


def _identity(kind: str, path: str | Path) -> list[Any]:
    """How a cached score names its model: kind, resolved path, the file's mtime and size.

    Replacing the weights at the same path thus invalidates the cache.
    """
    path = Path(path).resolve()
    stat = (path / "config.json" if path.is_dir() else path).stat()
    return [kind, str(path), stat.st_mtime_ns, stat.st_size]


def _models(args: argparse.Namespace) -> tuple[ScoreModels, dict[str, Any]]:
    models = ScoreModels()
    signature: dict[str, Any] = {}
    if args.embedder == "own":
        if not args.encoders:
            raise ValueError("--embedder own needs --encoders FILE")
        tower = None
        if args.text_encoder:
            tower = load_text_tower(args.text_encoder, args.text_config)
        own = AVMAEEmbedder.from_file(args.encoders, args.device, tower, args.av_space)
        models.audio_visual = own
        signature["audio_visual"] = _identity("own", args.encoders)
        if args.av_space == "retrieval":
            signature["audio_visual"] += _identity("own-retrieval", args.text_encoder)
        if tower is not None:
            models.text_av = own
            signature["text_av"] = _identity("own-text", args.text_encoder)
    elif args.text_encoder:
        raise ValueError("--text-encoder needs --embedder own (and its --encoders)")
    if args.clap or args.clip:
        from avpretrain.curation.hf_embedders import ClapEmbedder, ClipEmbedder

        if args.clap:
            models.text_audio = ClapEmbedder(args.clap, args.device)
            signature["text_audio"] = _identity("clap", args.clap)
        if args.clip:
            models.text_visual = ClipEmbedder(args.clip, args.device)
            signature["text_visual"] = _identity("clip", args.clip)
    if args.plugin:
        _add_plugin(args, models, signature)
    return models, signature


def _add_plugin(args: argparse.Namespace, models: ScoreModels, signature: dict[str, Any]) -> None:
    """Let the plugin fill the pairs it embeds that are still empty."""
    plugin = load_plugin(args.plugin, args.plugin_arg, args.device)
    arg = args.plugin_arg
    # a weights path names its file (mtime, size) in the cache key, as the built-in models do
    identity = _identity(args.plugin, arg) if arg and Path(arg).is_file() else [args.plugin, arg]
    pairs = {"audio_visual": ("audio", "frames"), "text_audio": ("text", "audio")}
    pairs["text_visual"] = ("text", "frames")
    for name, needs in pairs.items():
        if getattr(models, name) is None and supports(plugin, *needs):
            setattr(models, name, plugin)
            signature[name] = identity


def main(argv: list[str]) -> int:
    """``avpretrain curate``: returns 0 on success, 2 on bad arguments or input."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out)
    try:
        index = read_index(args.shards)
        source = Path(args.shards) if Path(args.shards).is_dir() else Path(args.shards).parent
        if out.resolve() == source.resolve():
            raise ValueError(f"--out {out} must differ from the input shard folder")
        if args.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
        thresholds = parse_thresholds(args.thresholds)
        stages = [s.strip() for s in args.stages.split(",") if s.strip()]
        models, signature = _models(args)
        bad = SkipCounter(slots=1)
        scored, unreadable = cached_scores(
            index["shards"], out, models, signature, args.batch_size, bad
        )
        flat = [(name, r) for name, records in scored.items() for r in records]
        if not flat:
            raise ValueError(
                f"{args.shards}: no readable clip in {len(index['shards'])} shard(s) "
                f"({unreadable} samples or shard parts unreadable; the latest: "
                f"{bad.last_error or 'see the score cache'})"
            )
        result = filter_scores([r["scores"] for _, r in flat], thresholds, args.quantile, stages)
    except (ValueError, FileNotFoundError) as err:
        print(f"avpretrain curate: {err}", file=sys.stderr)
        return 2
    keep = {(name, r["key"]): k for (name, r), k in zip(flat, result.keep, strict=True)}
    counts = write_curated(index["shards"], out, scored, keep)
    summary = {"source": str(args.shards), "thresholds": thresholds, "quantile": args.quantile}
    summary["unreadable_skipped"] = unreadable
    write_index(out, counts, curation={**summary, "embedders": signature})
    report = write_report(
        out,
        [r["scores"] for _, r in flat],
        [r["category"] for _, r in flat],
        result,
        corruptions=[r.get("corruption") for _, r in flat],
        **summary,
        stages_on=stages,
        embedders=signature,
    )
    print(
        f"curate: kept {report['kept']} of {report['total']} clips -> {out}"
        + (f" ({unreadable} unreadable samples or shard parts skipped)" if unreadable else "")
    )
    return 0
