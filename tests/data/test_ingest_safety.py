"""`avpretrain ingest` under careless use: two runs on one folder, damaged shards, a full disk,
timestamps in the wrong units, malformed manifests, several audio streams."""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import soundfile as sf
import webdataset as wds

import avpretrain.data.shards as shards
from avpretrain.data.ingest.lock import OutputBusy, OutputLock
from avpretrain.data.ingest.runner import main
from avpretrain.data.ingest.verify import shard_problem
from avpretrain.data.shards import read_index
from tests.data.odd_videos import stream_amplitude, write_timed
from tests.data.videos import write_video

TINY = ["--clip-seconds", "1", "--frames", "2", "--short-side", "16", "--workers", "1"]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """a.mp4 (3 s) and b.mp4 (2 s): five 1 s clips."""
    root = tmp_path_factory.mktemp("videos")
    write_video(root / "a.mp4", seconds=3.0)
    write_video(root / "b.mp4", seconds=2.0)
    return root


def _raw(out: Path) -> dict[str, dict[str, bytes]]:
    samples = {}
    for shard in read_index(out)["shards"]:
        for raw in wds.WebDataset(shard["url"], shardshuffle=False):
            samples[raw["__key__"]] = {k: v for k, v in raw.items() if not k.startswith("__")}
    return samples


def _cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "avpretrain.cli", "ingest", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_second_process_is_refused_while_another_holds_the_folder(videos, tmp_path, capsys):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from avpretrain.data.ingest.lock import OutputLock\n"
            "with OutputLock(sys.argv[1]):\n    print('locked', flush=True); sys.stdin.read()",
            str(out),
        ],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        # This (pytest's) process is the second one: refused at once.
        assert main([str(videos), "--out", str(out), *TINY]) == 2
        err = capsys.readouterr().err
        assert f"pid {holder.pid} on {socket.gethostname()}" in err
        assert "another ingest" in err
        assert not list(out.glob("*.tar")) and not (out / "ingest-plan.json").exists()
    finally:
        holder.communicate("", timeout=60)  # the holder exits: the lock is released
    assert main([str(videos), "--out", str(out), *TINY]) == 0
    assert read_index(out)["total"] == 5


def test_a_lock_kept_by_the_children_of_a_dead_run_says_so(tmp_path):
    script = (
        "import os, sys, time\n"
        "from avpretrain.data.ingest.lock import OutputLock\n"
        "OutputLock(sys.argv[1]).__enter__()\n"
        "child = os.fork()\n"
        "if child == 0:\n"
        "    null = os.open(os.devnull, os.O_RDWR); os.dup2(null, 1); os.dup2(null, 2)\n"
        "    time.sleep(120); os._exit(0)\n"
        "print(child, flush=True)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=True
    )
    child = int(run.stdout)
    try:
        with pytest.raises(OutputBusy, match="has exited, but processes it started") as err:
            OutputLock(tmp_path).__enter__()
        assert "fuser -v" in str(err.value)
    finally:
        os.kill(child, signal.SIGKILL)


@pytest.mark.slow
def test_workers_die_with_a_killed_ingest_and_the_rerun_completes(tmp_path):
    (tmp_path / "src").mkdir()
    for i in range(3):
        write_video(tmp_path / "src" / f"v{i}.mp4", seconds=3.0, size=(160, 120))
    out = tmp_path / "out"
    argv = [str(tmp_path / "src"), "--out", str(out), *TINY, "--workers", "2", "--shard-size", "1"]
    run = _cli(*argv)
    children: list[int] = []
    for _ in range(600):  # until both workers run (or the run ends)
        children = _children(run.pid)
        if len(children) >= 2 or run.poll() is not None:
            break
        time.sleep(0.1)
    run.kill()
    run.wait()
    for _ in range(300):  # the kernel ends them at once; generous bound on "at all"
        if not any(Path(f"/proc/{c}").exists() for c in children):
            break
        time.sleep(0.1)
    assert not any(Path(f"/proc/{c}").exists() for c in children)
    assert main(argv) == 0 and read_index(out)["total"] == 9


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
def test_two_ingests_started_together_leave_one_consistent_folder(videos, tmp_path):
    out = tmp_path / "out"
    runs = [_cli(str(videos), "--out", str(out), *TINY, "--frames", f) for f in ("2", "3")]
    results = [(run.wait(timeout=300), run.stderr.read()) for run in runs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    # Refused at the lock while the other ran, or by its plan if the other had already finished.
    assert "another ingest" in refused or "other settings" in refused
    frames = json.loads((out / "ingest-plan.json").read_text())["config"]["frames"]
    plan = json.loads((out / "ingest-plan.json").read_text())
    keys = {
        f"{i:07d}-{c:05d}" for i, v in enumerate(plan["videos"]) for c in range(len(v["clips"]))
    }
    for shard in read_index(out)["shards"]:
        assert shard_problem(Path(shard["url"]), keys, frames, shard["samples"]) is None
    assert read_index(out)["total"] == 5


def test_a_rerun_checks_existing_shards_and_rewrites_damaged_ones(videos, tmp_path, caplog):
    out, other = tmp_path / "out", tmp_path / "other"
    argv = [str(videos), "--out", str(out), "--shard-size", "2", *TINY]
    assert main(argv) == 0
    before = _raw(out)
    assert (
        main([str(videos), "--out", str(other), "--shard-size", "2", *TINY, "--frames", "3"]) == 0
    )
    # shard 0 cut in half; shard 1 replaced by another run's (3 frames per clip); leftovers of a
    # killed run beside them.
    first = out / "shard-000000.tar"
    first.write_bytes(first.read_bytes()[: first.stat().st_size // 2])
    (out / "shard-000001.tar").write_bytes((other / "shard-000001.tar").read_bytes())
    (out / "shard-000009.tar.tmp").write_bytes(b"half")
    (out / "index.json.tmp").write_text("{")
    caplog.set_level(logging.INFO, logger="avpretrain.ingest")
    assert main(argv) == 0
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("shard-000000.tar is damaged" in m for m in warned), warned
    assert any("shard-000001.tar is damaged" in m and "not 2 frames" in m for m in warned)
    assert not list(out.glob("*.tmp"))
    assert _raw(out) == before  # rewritten identically
    summary = read_index(out)["summary"]
    assert summary["shards_written"] == 2 and summary["clips_written"] == 5


def test_shard_problem_finds_a_tar_cut_at_a_member_boundary(videos, tmp_path):
    out = tmp_path / "out"
    assert main([str(videos), "--out", str(out), *TINY]) == 0
    shard = out / "shard-000000.tar"
    keys = {f"{i:07d}-{c:05d}" for i, n in ((0, 3), (1, 2)) for c in range(n)}
    assert shard_problem(shard, keys, 2, 5) is None
    assert "logged 4" in shard_problem(shard, keys, 2, 4)
    assert "not 3 frames" in shard_problem(shard, keys, 3, 5)
    assert "does not put here" in shard_problem(shard, keys - {"0000000-00000"}, 2, 5)
    with tarfile.open(shard) as tar:
        last = tar.getmembers()[-1]
    cut = last.offset_data + (last.size + 511) // 512 * 512  # no end-of-archive blocks
    shard.write_bytes(shard.read_bytes()[:cut])
    assert "end-of-archive" in shard_problem(shard, keys, 2, None)


def test_a_full_disk_fails_its_shard_cleanly_and_the_rest_is_indexed(
    videos, tmp_path, monkeypatch, caplog
):
    real = shards.wds.TarWriter

    def writer(fname, **kwargs):
        sink = real(fname, **kwargs)
        if "shard-000001" in fname:
            write = sink.write
            calls = []

            def fill_up(sample):
                if calls:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                calls.append(sample["__key__"])
                return write(sample)

            sink.write = fill_up
        return sink

    monkeypatch.setattr(shards.wds, "TarWriter", writer)
    out = tmp_path / "out"
    argv = [str(videos), "--out", str(out), "--shard-size", "2", *TINY]
    assert main(argv) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any(
        str(out / "shard-000001.tar") in m and "No space left on device (ENOSPC)" in m
        for m in errors
    ), errors
    assert not list(out.glob("*.tmp"))
    index = read_index(out)
    assert [s["name"] for s in index["shards"]] == ["shard-000000.tar", "shard-000002.tar"]
    assert index["summary"]["shards_failed"] == ["shard-000001.tar"]
    monkeypatch.setattr(shards.wds, "TarWriter", real)
    assert main(argv) == 0 and read_index(out)["total"] == 5


def test_an_end_far_past_the_video_is_refused_and_heavy_padding_warned(videos, tmp_path, caplog):
    video = videos / "a.mp4"  # 3 s
    (tmp_path / "m.csv").write_text(
        f"path,start,end\n{video},0,10000\n{video},2.5,3.6\n{video},1,2\n"
    )
    caplog.set_level(logging.INFO, logger="avpretrain.ingest")
    out = tmp_path / "out"
    assert main([str(tmp_path / "m.csv"), "--out", str(out), *TINY, "--min-seconds", "0.3"]) == 0
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("a.mp4 clip 0.00-10000.00 s [past_end]" in m for m in warned), warned
    assert any("a.mp4 clip 2.50-3.60 s" in m and "s of padding follow" in m for m in warned)
    summary = read_index(out)["summary"]
    assert summary["clips_skipped"] == {"past_end": 1}
    assert summary["clips_mostly_padded"] == 1 and summary["clips_written"] == 2


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("path,start,end\nb.mp4,0,1\nb.mp4,4\n", "m.csv:3: row has 2 fields, the header has 3"),
        ("path,start,end\nb.mp4,0,1,2\n", "m.csv:2: row has 4 fields, the header has 3"),
        ("path,start,end\n,0,1\n", "m.csv:2: row has no 'path'"),
        ("path,start,end\nb.mp4,zero,1\n", "m.csv:2: start 'zero' is not a number"),
        ("path,start,end\n  ,,\n,,,x\n", "m.csv:3: row has 4 fields"),  # blank row 2 is fine
        ("path,start,end\nb.mp4,00:01:30,1\n", "start '00:01:30' is not a number"),
    ],
)
def test_malformed_csv_rows_are_refused_with_file_and_line(videos, tmp_path, capsys, text, problem):
    (tmp_path / "m.csv").write_text(text.replace("b.mp4", str(videos / "b.mp4")))
    assert main([str(tmp_path / "m.csv"), "--out", str(tmp_path / "o"), *TINY]) == 2
    assert problem in capsys.readouterr().err


@pytest.mark.parametrize(
    ("row", "problem"),
    [({"path": 5}, "path must be text"), ({"path": "b.mp4", "start": True}, "start True")],
)
def test_malformed_jsonl_rows_are_refused(videos, tmp_path, capsys, row, problem):
    (tmp_path / "m.jsonl").write_text(json.dumps(row) + "\n")
    assert main([str(tmp_path / "m.jsonl"), "--out", str(tmp_path / "o"), *TINY]) == 2
    assert f"m.jsonl:1: {problem}" in capsys.readouterr().err


def test_a_byte_order_mark_is_read_and_duplicate_rows_are_written_once(videos, tmp_path, caplog):
    b = videos / "b.mp4"
    text = f"path, start ,end,note\n{b},0,1,x\n{b},1,2,y\n{b},0,1,z\n"
    (tmp_path / "m.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    out = tmp_path / "out"
    assert main([str(tmp_path / "m.csv"), "--out", str(out), *TINY]) == 0
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("m.csv: line 4 repeats line 2" in m for m in warned), warned
    assert any("unknown fields ['note']" in m for m in warned), warned
    metas = [json.loads(s["json"]) for s in _raw(out).values()]
    assert sorted((m["start"], m["end"]) for m in metas) == [(0.0, 1.0), (1.0, 2.0)]
    (tmp_path / "m.jsonl").write_bytes(b"\xef\xbb\xbf" + json.dumps({"path": str(b)}).encode())
    assert main([str(tmp_path / "m.jsonl"), "--out", str(tmp_path / "j"), *TINY]) == 0
    assert read_index(tmp_path / "j")["total"] == 2


def test_the_audio_stream_choice_is_logged_and_can_be_set(tmp_path, caplog):
    (tmp_path / "src").mkdir()
    write_timed(
        tmp_path / "src" / "two.mkv",
        [i / 10 for i in range(20)],
        audio_spans=[(0, 2)],
        audio_streams=2,
        default_audio=1,
    )
    caplog.set_level(logging.INFO, logger="avpretrain.ingest")
    for asked, stream in ((None, 1), ("0", 0)):
        out = tmp_path / f"out{asked}"
        extra = [] if asked is None else ["--audio-stream", asked]
        assert main([str(tmp_path / "src"), "--out", str(out), *TINY, *extra]) == 0
        for sample in _raw(out).values():
            audio, _ = sf.read(io.BytesIO(sample["flac"]), dtype="float32")
            peak = float((audio.astype("float64") ** 2).mean() ** 0.5 * 2**0.5)
            assert peak == pytest.approx(stream_amplitude(stream), rel=0.03)
    infos = [r.getMessage() for r in caplog.records]
    assert any("two.mkv: 2 audio streams; using audio stream 1, the one marked default" in m
               for m in infos)  # fmt: skip
    out = tmp_path / "out5"
    assert main([str(tmp_path / "src"), "--out", str(out), *TINY, "--audio-stream", "5"]) == 1
    assert read_index(out)["summary"]["videos_skipped"] == {"audio_stream": 1}


def test_a_damaged_or_older_plan_is_named(videos, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    plan = tmp_path / "out" / "ingest-plan.json"
    plan.write_text('{"version": 2, "conf')
    assert main([str(videos), "--out", str(tmp_path / "out"), *TINY]) == 2
    assert "ingest-plan.json is not a readable plan" in capsys.readouterr().err
    plan.write_text('{"version": 1, "config": {}}')
    assert main([str(videos), "--out", str(tmp_path / "out"), *TINY]) == 2
    assert "ingest-plan.json is a version 1 plan" in capsys.readouterr().err


def test_careless_paths_are_named_and_nothing_written_is_an_error(videos, tmp_path, capsys, caplog):
    (tmp_path / "afile").write_text("")
    assert main([str(videos), "--out", str(tmp_path / "afile"), *TINY]) == 2
    assert "afile is a file" in capsys.readouterr().err
    (tmp_path / "sub").mkdir()
    rows = [f"{tmp_path / 'gone.mp4'},0,1", "sub,0,1"]  # a typo, and a folder
    (tmp_path / "m.csv").write_text("path,start,end\n" + "\n".join(rows) + "\n")
    assert main([str(tmp_path / "m.csv"), "--out", str(tmp_path / "o"), *TINY]) == 1
    assert "no clip was written" in capsys.readouterr().err
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("gone.mp4 [missing]: no such file" in m for m in warned), warned
    assert any("sub [missing]: a folder" in m for m in warned), warned
    (tmp_path / "m.jsonl").write_bytes(b"\xe9\n")
    assert main([str(tmp_path / "m.jsonl"), "--out", str(tmp_path / "j"), *TINY]) == 2
    assert "m.jsonl: not UTF-8 text" in capsys.readouterr().err


def test_two_spellings_of_one_file_are_one_video(videos, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("HOME", str(videos))
    rel = os.path.relpath(videos / "b.mp4", tmp_path)
    rows = ["~/b.mp4,0,1", f"{rel},1,2", f"x/../{rel},0,1"]
    (tmp_path / "m.csv").write_text("path,start,end\n" + "\n".join(rows) + "\n")
    out = tmp_path / "out"
    assert main([str(tmp_path / "m.csv"), "--out", str(out), *TINY]) == 0
    plan = json.loads((out / "ingest-plan.json").read_text())
    assert [v["path"] for v in plan["videos"]] == [str(videos / "b.mp4")]
    assert len(plan["videos"][0]["clips"]) == 2
    assert any("line 4 repeats line 2" in r.getMessage() for r in caplog.records)


def test_a_resume_is_refused_when_a_video_it_needs_changed(videos, tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.mp4", "b.mp4"):
        (src / name).write_bytes((videos / name).read_bytes())
    out = tmp_path / "out"
    argv = [str(src), "--out", str(out), "--shard-size", "3", *TINY]
    assert main(argv) == 0
    (out / "shard-000001.tar").unlink()  # b.mp4's clips: written again on resume
    write_video(src / "b.mp4", seconds=2.0, size=(32, 24))  # re-encoded meanwhile
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "1 input videos changed" in err and f"{src / 'b.mp4'} (" in err
    write_video(src / "b.mp4", seconds=2.0)  # put back as it was: resumable again
    assert main(argv) == 0 and read_index(out)["total"] == 5
