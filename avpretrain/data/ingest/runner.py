"""``avpretrain ingest``: turn video files into webdataset shards.

The shards follow the schema of :mod:`avpretrain.data.schema`; several processes work at once, and a
run is resumable.

Steps: read the inputs (folder or manifest), probe each file and fix the plan
(:mod:`avpretrain.data.ingest.plan`), write every shard of the plan that does not exist yet
(:mod:`avpretrain.data.ingest.shard`; each video is decoded once, :mod:`avpretrain.data.ingest.decode`),
then write ``index.json`` with every shard's sample count and the summary. Bad inputs are logged
and counted, never fatal. Beside the shards: ``ingest-plan.json`` (the plan),
``ingest-log.jsonl`` (one line per finished shard: samples written and clips skipped, so a resumed
run's summary still covers earlier runs) and ``ingest.lock`` (:mod:`avpretrain.data.ingest.lock`:
one run at a time per folder). A rerun counts an existing shard as done only after checking it
(:mod:`avpretrain.data.ingest.verify`); a damaged one is rewritten.
"""

from __future__ import annotations

import ctypes
import json
import logging
import multiprocessing
import os
import signal
import sys
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import fields
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from avpretrain.arguments import canonical_flags, dataclass_parser, field_values
from avpretrain.data.ingest.lock import OutputLock
from avpretrain.data.ingest.manifest import read_inputs
from avpretrain.data.ingest.plan import (
    PLAN_NAME,
    IngestConfig,
    build_plan,
    changed_inputs,
    load_plan,
    probe_task,
    save_plan,
)
from avpretrain.data.ingest.shard import sample_key, write_planned_shard
from avpretrain.data.ingest.verify import shard_problem
from avpretrain.data.shards import INDEX_NAME, count_samples, write_index

if TYPE_CHECKING:
    from jsonargparse import ArgumentParser, Namespace

logger = logging.getLogger("avpretrain.ingest")

LOG_NAME = "ingest-log.jsonl"
PR_SET_PDEATHSIG = 1  # linux/prctl.h
# Reasons that are a consequence of the settings rather than a fault in the file.
ROUTINE_REASONS = frozenset({"too_short", "no_audio"})


def _log_skip(skip: dict[str, Any]) -> None:
    level = logging.INFO if skip["reason"] in ROUTINE_REASONS else logging.WARNING
    where = skip["path"]
    if skip.get("start") is not None:
        where += f" clip {skip['start']:.2f}-{skip['end']:.2f} s"
    logger.log(level, "skipped %s [%s]: %s", where, skip["reason"], skip["detail"])


def _read_log(out: Path) -> dict[str, dict[str, Any]]:
    path = out / LOG_NAME
    if not path.exists():
        return {}
    results = {}
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill; that shard's tar will be counted instead
        results[record["name"]] = record
    return results


def _context() -> multiprocessing.context.BaseContext:
    """The pool's start method: fork on Linux, spawn elsewhere.

    Fork on Linux: workers start at once instead of re-importing webdataset and torch (about a
    second each), and this process holds no decoder threads when the pool starts. Spawn elsewhere
    (forking is unsafe on macOS).
    """
    return multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")


def _die_with_parent(parent: int) -> None:
    """Worker initializer: on Linux, the kernel kills this worker when the ingest process dies.

    This holds even for SIGKILL. Orphaned workers would otherwise wait forever on their task queue,
    holding the output folder's lock (their copy of its file descriptor) and a rerun off.
    """
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the prctl took effect
        os._exit(1)


def _pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        workers, mp_context=_context(), initializer=_die_with_parent, initargs=(os.getpid(),)
    )


def _probe_all(paths: list[str], workers: int, audio_stream: int | None) -> list[dict[str, Any]]:
    bar = partial(tqdm, total=len(paths), desc="probing", unit="video", disable=None)
    task = partial(probe_task, audio_stream=audio_stream)
    if workers == 1:
        return list(bar(map(task, paths)))
    chunk = max(1, min(64, len(paths) // (8 * workers)))
    try:
        with _pool(workers) as pool:
            return list(bar(pool.map(task, paths, chunksize=chunk)))
    except BrokenProcessPool as err:
        raise RuntimeError(
            "a worker process crashed while probing the inputs; rerun with --workers 1 to see "
            "which file brings FFmpeg down, and move it away"
        ) from err


def _tasks(
    plan: dict[str, Any], out: Path, shards: list[dict[str, Any]], threads: int
) -> Iterator[dict[str, Any]]:
    videos = plan["videos"]
    for shard in shards:
        parts = [({**videos[i], "index": i}, lo, hi) for i, lo, hi in shard["parts"]]
        yield {
            "out": str(out),
            "name": shard["name"],
            "config": plan["config"],
            "threads": threads,
            "parts": parts,
        }


def _crashed(task: dict[str, Any]) -> dict[str, Any]:
    videos = [video["path"] for video, *_ in task["parts"]]
    return {
        "name": task["name"],
        "samples": 0,
        "skipped": [],
        "error": f"the worker process writing it died (a file brings FFmpeg down); videos: {videos}",
    }


def _pool_results(
    tasks: deque[dict[str, Any]], workers: int, broken: list[dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """Run ``tasks`` (consumed) in one pool.

    If a worker dies, the shards in flight go to ``broken`` and the pool is given up.
    """
    with _pool(workers) as pool:
        running: dict[Future, dict[str, Any]] = {}
        while tasks or running:
            while tasks and len(running) < 2 * workers:
                task = tasks.popleft()
                running[pool.submit(write_planned_shard, task)] = task
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                task = running.pop(future)
                try:
                    yield future.result()
                except BrokenProcessPool:
                    broken.append(task)
            if broken:
                broken.extend(running.values())
                return


def _run_parallel(tasks: list[dict[str, Any]], workers: int) -> Iterator[dict[str, Any]]:
    """Results of :func:`write_planned_shard` for every task, as they finish.

    A worker that dies (a segfault in a decoder) breaks the pool: the other shards go on in a
    fresh pool, and the shards that were in flight are retried one at a time, alone in a pool
    of their own, so the culprit fails and only it.
    """
    suspects: list[dict[str, Any]]
    queue, suspects = deque(tasks), []
    while queue:
        yield from _pool_results(queue, workers, suspects)
    for task in suspects:
        alone: list[dict[str, Any]] = []
        yield from _pool_results(deque([task]), 1, alone)
        if alone:
            yield _crashed(task)


def _remove_stale_temporaries(out: Path, prefix: str) -> None:
    """Delete what killed runs left half-written (safe: this run holds the folder's lock)."""
    names = [f"{prefix}-*.tar.tmp", f"{PLAN_NAME}.tmp", f"{INDEX_NAME}.tmp"]
    for path in sorted(p for name in names for p in out.glob(name)):
        logger.info("removing %s, left half-written by an earlier run", path)
        path.unlink()


def _remove_damaged(plan: dict[str, Any], out: Path, logged: dict[str, dict[str, Any]]) -> None:
    """Check every existing shard of the plan.

    Those that fail the check are deleted (and unlogged), so that they are written again.
    """
    frames = plan["config"]["frames"]
    for shard in plan["shards"]:
        path = out / shard["name"]
        if not path.exists():
            continue
        keys = {sample_key(i, c) for i, lo, hi in shard["parts"] for c in range(lo, hi)}
        record = logged.get(shard["name"])
        problem = shard_problem(path, keys, frames, None if record is None else record["samples"])
        if problem is not None:
            logger.warning("%s is damaged (%s); writing it again", path, problem)
            path.unlink()
            logged.pop(shard["name"], None)


def _check_inputs(plan: dict[str, Any], out: Path) -> None:
    """Refuse to resume when a video that a missing shard needs has changed since the plan."""
    pending = [s for s in plan["shards"] if not (out / s["name"]).exists()]
    changed = changed_inputs(plan, pending)
    if changed:
        raise ValueError(
            f"{len(changed)} input videos changed since {out / PLAN_NAME} was made, e.g. "
            f"{'; '.join(changed[:3])}; put them back, or start over in a new --out"
        )


def _write_shards(
    plan: dict[str, Any], out: Path, workers: int, logged: dict[str, dict[str, Any]]
) -> list[str]:
    """Write the plan's missing shards; update ``logged`` and the log file; return failures."""
    pending = [s for s in plan["shards"] if not (out / s["name"]).exists()]
    clips = {s["name"]: s["clips"] for s in pending}
    tasks = list(_tasks(plan, out, pending, threads=max(1, (os.cpu_count() or 1) // workers)))
    if workers == 1 or len(tasks) <= 1:
        results = map(write_planned_shard, tasks)
    else:
        results = _run_parallel(tasks, min(workers, len(tasks)))
    failed = []
    bar = tqdm(total=sum(clips.values()), desc="ingest", unit="clip", disable=None)
    with bar, (out / LOG_NAME).open("a") as log:
        for result in results:
            bar.update(clips[result["name"]])
            for skip in result["skipped"]:
                _log_skip(skip)
            if result["error"] is not None:
                logger.error("shard %s failed: %s", result["name"], result["error"])
                failed.append(result["name"])
                continue
            record = {
                "name": result["name"],
                "samples": result["samples"],
                "skipped": dict(Counter(s["reason"] for s in result["skipped"])),
            }
            logged[record["name"]] = record
            try:
                log.write(json.dumps(record) + "\n")
                log.flush()
            except OSError as err:  # the shard itself is complete; a rerun verifies and keeps it
                logger.error("cannot log %s in %s: %s", record["name"], LOG_NAME, err)
    return sorted(failed)


def _summary(
    plan: dict[str, Any], out: Path, logged: dict[str, dict[str, Any]], written: int, failed: list
) -> tuple[dict[str, Any], dict[str, int]]:
    """The run's summary over all plan shards (this run's and earlier ones) and shard counts."""
    clip_skips = Counter(s["reason"] for s in plan["skipped_clips"])
    videos = plan["videos"]
    counts, unlogged = {}, []
    for shard in plan["shards"]:
        name = shard["name"]
        if not (out / name).exists():
            continue
        if name in logged:
            counts[name] = logged[name]["samples"]
            clip_skips.update(logged[name]["skipped"])
        else:
            counts[name] = count_samples(out / name)
            unlogged.append(name)
    summary = {
        "videos": len(plan["videos"]) + len(plan["skipped_videos"]),
        "clips_planned": sum(s["clips"] for s in plan["shards"]),
        "clips_written": sum(counts.values()),
        "clips_mostly_padded": sum(
            c.get("mostly_padded", False) for v in videos for c in v["clips"]
        ),
        "clips_skipped": dict(sorted(clip_skips.items())),
        "videos_skipped": dict(
            sorted(Counter(s["reason"] for s in plan["skipped_videos"]).items())
        ),
        "shards": len(plan["shards"]),
        "shards_written": written,
        "shards_failed": failed,
    }
    if unlogged:
        # Finished by a run killed before it logged them: their skips are not counted.
        summary["shards_unlogged"] = unlogged
    return summary, counts


def ingest(
    source: str | Path,
    out: str | Path,
    config: IngestConfig | None = None,
    workers: int = 1,
    manifest: bool | None = None,
) -> dict[str, Any]:
    """Ingest videos into shards under ``out``; resume if ``out`` holds an earlier run's plan.

    Args:
        source: folder of videos, manifest (CSV / JSON Lines) or one video file.
        out: output folder (shards, ``index.json``, ``ingest-plan.json``, ``ingest-log.jsonl``).
        config: what to store; must equal the stored plan's when resuming.
        workers: processes that probe and write shards (1: all in this process).
        manifest: treat ``source`` as a manifest; None decides by its suffix.

    Returns:
        The index written to ``out/index.json``, with the run's ``summary``.

    Raises:
        ValueError: no inputs, a malformed manifest, or a plan made with other settings.
        RuntimeError: a worker process died while probing (a file that crashes FFmpeg).
        OutputBusy: another ingest is writing into ``out`` (a RuntimeError).
        OSError: the plan or the index cannot be written (a full disk).
    """
    config = config or IngestConfig()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder for the shards")
    sources, classes = read_inputs(source, manifest, config.clip_seconds)
    if not sources:
        raise ValueError(f"{source}: no video files found")
    with OutputLock(out):
        _remove_stale_temporaries(out, config.prefix)
        plan = load_plan(out, config, sources)
        if plan is None:
            probes = _probe_all([s.path for s in sources], workers, config.audio_stream)
            plan = build_plan(sources, probes, config, classes)
            for skip in plan["skipped_videos"] + plan["skipped_clips"]:
                _log_skip(skip)
            save_plan(out, plan)
        logged = _read_log(out)
        _remove_damaged(plan, out, logged)
        _check_inputs(plan, out)
        before = sum((out / s["name"]).exists() for s in plan["shards"])
        failed = _write_shards(plan, out, workers, logged)
        written = sum((out / s["name"]).exists() for s in plan["shards"]) - before
        summary, counts = _summary(plan, out, logged, written, failed)
        index_path = write_index(out, counts, summary=summary, classes=plan["classes"])
        return json.loads(index_path.read_text())


def format_summary(summary: dict[str, Any]) -> str:
    """One human-readable line per fact of a run's summary."""

    def reasons(counts: dict[str, int]) -> str:
        return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"

    lines = [
        f"clips written: {summary['clips_written']} of {summary['clips_planned']} planned "
        f"from {summary['videos']} videos, in {summary['shards']} shards "
        f"({summary['shards_written']} written by this run)",
        f"clips skipped: {reasons(summary['clips_skipped'])}",
        f"clips with more padding than content (warned above): "
        f"{summary.get('clips_mostly_padded', 0)}",
        f"videos skipped: {reasons(summary['videos_skipped'])}",
    ]
    if summary["shards_failed"]:
        lines.append(f"shards FAILED (rerun to retry): {', '.join(summary['shards_failed'])}")
    return "\n".join(lines)


# The options of the command beside IngestConfig's fields (min_seconds has its own default).
RUN_OPTIONS = ("out", "manifest", "workers", "min_seconds")


def build_parser() -> ArgumentParser:
    """The ``avpretrain ingest`` argument parser: an option per :class:`IngestConfig` field.

    Besides them: the input, ``--out``, ``--manifest``, ``--workers``; ``--min_seconds``
    defaults to the config's or the clip length if shorter. Parse with :func:`parse_args`.
    """
    d = IngestConfig()
    p = dataclass_parser(
        IngestConfig,
        "avpretrain ingest",
        "Decode videos once into webdataset shards of clips (JPEG frames, mono FLAC, JSON "
        "metadata). Rerun the same command to resume an interrupted run.",
        skip={"min_seconds"},
    )
    p.add_argument("input", help="folder of videos (recursive), manifest (.csv/.jsonl) or a video")
    p.add_argument("--out", required=True, help="output folder for the shards and index.json")
    p.add_argument(
        "--manifest", action="store_true", help="read INPUT as a manifest whatever its suffix"
    )
    p.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)"
    )
    p.add_argument(
        "--min_seconds",
        type=float | None,
        default=None,
        help="skip clips with less content than this, whatever --short says "
        f"(default: {d.min_seconds} or the clip length if shorter)",
    )
    return p


def parse_args(argv: list[str] | None = None) -> Namespace:
    """Parse an ``avpretrain ingest`` command line (None: ``sys.argv``), dashed names included."""
    argv = sys.argv[1:] if argv is None else argv
    names = [*(f.name for f in fields(IngestConfig)), *RUN_OPTIONS]
    return build_parser().parse_args(canonical_flags(argv, names))


def main(argv: list[str] | None = None) -> int:
    """Run ``avpretrain ingest``.

    Returns 0 on success, 1 if some shard failed or no clip was written, 2 on bad arguments or
    inputs.
    """
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        values = field_values(args, IngestConfig)
        if args.min_seconds is None:
            values["min_seconds"] = min(IngestConfig.min_seconds, args.clip_seconds)
        config = IngestConfig(**values)
        if args.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {args.workers}")
        with logging_redirect_tqdm():  # log lines above the progress bar, not through it
            index = ingest(
                args.input, args.out, config, args.workers, True if args.manifest else None
            )
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"avpretrain ingest: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the plan or index could not be written: a full or read-only disk
        print(f"avpretrain ingest: error: {err}", file=sys.stderr)
        return 1
    summary = index["summary"]
    print(format_summary(summary))
    print(f"index: {Path(args.out) / 'index.json'}")
    if summary["clips_written"] == 0:
        print(
            "avpretrain ingest: error: no clip was written; the reasons are logged above",
            file=sys.stderr,
        )
        return 1
    return 1 if summary["shards_failed"] else 0
