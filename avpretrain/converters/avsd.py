"""AVSD dialog files -> an ``avpretrain ingest`` manifest of the Charades videos.

Reads the official AVSD JSON (DSTC7 ``train_set4DSTC7-AVSD.json``, ``valid_set4DSTC7-AVSD.json``,
``test_set4DSTC7-AVSD.json``; DSTC8 likewise): ``{"dialogs": [{"image_id", "caption",
"summary", "dialog": [{"question", "answer"}, ...]}, ...]}``, one dialog per Charades video
(``image_id`` is the video's name, ``<image_id>.mp4``).

The test files hide the last answer (``"__UNDISCLOSED__"``); its references come from the DSTC7
reference file (``test_set4DSTC7-AVSD_multiref.json``, read by the official
``dstc7avsd_eval.sh`` as the COCO caption evaluation's ground truth): a COCO caption file,
``{"annotations": [{"image_id", "caption"}, ...]}``, several captions per id (six per test
dialog). An annotation's ``image_id`` names the dialog either as the dialog's ``image_id`` or as
``<image_id>_<round>``; its captions become the ``references`` of the dialog's last round.

Output: one JSON line per dialog, ``id`` = ``image_id``, seconds 0-``clip_seconds`` (Charades
videos are about 30 s), ``caption`` = the AVSD caption, ``annotations`` = ``{"dialog_id",
"caption", "summary", "dialog": [{"question", "answer", "references"?}, ...]}`` as
:func:`avpretrain.tasks.targets.dialog.dialog_targets` reads it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from avpretrain.converters.common import (
    MANIFEST_FLAGS,
    VideoFinder,
    log_missing,
    run_function,
    write_jsonl,
)

CLIP_SECONDS = 30.0
UNDISCLOSED = "__UNDISCLOSED__"
DIALOG_FIELDS = ("image_id", "caption", "summary", "dialog")


def _load_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON: {err}") from err
    except OSError as err:
        raise FileNotFoundError(f"{path}: cannot read the {what}: {err}") from err


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a string, got {type(value).__name__}")
    return value


def read_dialogs(path: str | Path) -> list[dict[str, Any]]:
    """The dialogs of one AVSD file, checked field by field.

    Raises:
        ValueError: not JSON, no ``dialogs`` list, or a dialog / round lacking a field or with a
            field of the wrong kind; the message names the file, the dialog (index and
            ``image_id``) and the field.
    """
    path = Path(path)
    data = _load_json(path, "AVSD dialogs")
    if not isinstance(data, dict) or not isinstance(data.get("dialogs"), list):
        raise ValueError(f"{path}: expected a JSON object with a 'dialogs' list")
    dialogs = []
    for i, d in enumerate(data["dialogs"]):
        name = d.get("image_id") if isinstance(d, dict) else None
        where = f"{path}: dialogs[{i}] (image_id {name!r})"
        missing = [f for f in DIALOG_FIELDS if not isinstance(d, dict) or f not in d]
        if missing:
            raise ValueError(f"{where} lacks {missing}")
        rounds = d["dialog"]
        if not isinstance(rounds, list) or not rounds:
            raise ValueError(f"{where}: 'dialog' must be a non-empty list of rounds")
        turns = []
        for j, r in enumerate(rounds):
            for field in ("question", "answer"):
                if not isinstance(r, dict) or field not in r:
                    raise ValueError(f"{where}: dialog[{j}] lacks {field!r}")
            turns.append(
                {
                    "question": _text(r["question"], f"{where}: dialog[{j}].question"),
                    "answer": _text(r["answer"], f"{where}: dialog[{j}].answer"),
                }
            )
        dialogs.append(
            {
                "image_id": _text(d["image_id"], f"{where}: image_id"),
                "caption": _text(d["caption"], f"{where}: caption"),
                "summary": "" if d["summary"] is None else _text(d["summary"], f"{where}: summary"),
                "dialog": turns,
            }
        )
    return dialogs


def read_references(path: str | Path, image_ids: set[str]) -> dict[str, list[str]]:
    """Reference answers by dialog ``image_id`` from a COCO caption file (module docstring).

    Raises:
        ValueError: not a COCO caption file, an annotation without ``image_id`` or
            ``caption``, or an ``image_id`` naming no dialog of the dialog file.
    """
    path = Path(path)
    data = _load_json(path, "references")
    annotations = data.get("annotations") if isinstance(data, dict) else None
    if not isinstance(annotations, list):
        raise ValueError(f"{path}: expected a COCO caption file with an 'annotations' list")
    refs: dict[str, list[str]] = {}
    for i, a in enumerate(annotations):
        where = f"{path}: annotations[{i}]"
        if not isinstance(a, dict) or "image_id" not in a or "caption" not in a:
            raise ValueError(f"{where} lacks 'image_id' or 'caption'")
        raw = str(a["image_id"])
        name = raw if raw in image_ids else re.sub(r"_\d+$", "", raw)
        if name not in image_ids:
            raise ValueError(f"{where}: image_id {raw!r} names no dialog of the dialog file")
        refs.setdefault(name, []).append(_text(a["caption"], f"{where}: caption"))
    return refs


def convert(
    dialog_json: str | Path,
    video_dir: str | Path,
    out_jsonl: str | Path,
    references: str | Path | None = None,
    clip_seconds: float = CLIP_SECONDS,
    check_videos: bool = True,
) -> dict[str, Any]:
    """Write the ingest manifest of one AVSD split.

    Args:
        dialog_json: an AVSD dialog file.
        video_dir: folder of the Charades videos (searched recursively by ``<image_id>.<ext>``).
        out_jsonl: manifest to write.
        references: the COCO caption reference file of a test split (its captions become the
            last round's references); required where a last answer is ``__UNDISCLOSED__``.
        clip_seconds: clip length from second 0.
        check_videos: skip (and log) videos not found; False writes guessed paths unchecked.

    Returns:
        Summary: ``dialogs`` and ``rounds`` written, ``missing_videos``, ``with_references``
        (dialogs whose last round has references from the file) and ``out``.
    """
    if clip_seconds <= 0:
        raise ValueError(f"clip_seconds must be > 0, got {clip_seconds}")
    dialogs = read_dialogs(dialog_json)
    ids = [d["image_id"] for d in dialogs]
    dup = [i for i, n in Counter(ids).items() if n > 1]
    if dup:
        raise ValueError(f"{dialog_json}: image_id {dup[0]!r} has more than one dialog")
    refs = read_references(references, set(ids)) if references is not None else {}
    finder = VideoFinder(video_dir, check_videos)
    rows, missing = [], []
    for i, d in enumerate(dialogs):
        turns = [dict(t) for t in d["dialog"]]
        if d["image_id"] in refs:
            turns[-1]["references"] = refs[d["image_id"]]
        undisclosed = [j for j, t in enumerate(turns) if t["answer"] == UNDISCLOSED]
        if any(j != len(turns) - 1 or "references" not in turns[j] for j in undisclosed):
            raise ValueError(
                f"{dialog_json}: dialogs[{i}] (image_id {d['image_id']!r}): dialog"
                f"[{undisclosed[0]}].answer is {UNDISCLOSED} and no reference replaces it "
                f"(pass the DSTC7 reference file with --references)"
            )
        if undisclosed:
            turns[-1]["answer"] = turns[-1]["references"][0]
        path = finder.find(d["image_id"])
        if path is None:
            missing.append(d["image_id"])
            continue
        annotations = {
            "dialog_id": d["image_id"],
            "caption": d["caption"],
            "summary": d["summary"],
            "dialog": turns,
        }
        rows.append(
            {
                "path": str(path),
                "id": d["image_id"],
                "start": 0.0,
                "end": float(clip_seconds),
                "caption": d["caption"],
                "annotations": annotations,
            }
        )
    log_missing(missing, finder.video_dir)
    count = write_jsonl(rows, out_jsonl)
    return {
        "dialogs": count,
        "rounds": sum(len(r["annotations"]["dialog"]) for r in rows),
        "missing_videos": len(missing),
        "with_references": sum(1 for r in rows if "references" in r["annotations"]["dialog"][-1]),
        "out": str(out_jsonl),
    }


def main(argv: list[str] | None = None) -> int:
    """Run ``avpretrain convert-avsd``; 0 on success, 1 if no video found, 2 on bad input."""
    description = "AVSD dialog JSON -> JSON Lines manifest for `avpretrain ingest`."
    return run_function("convert-avsd", convert, description, "dialogs", argv, MANIFEST_FLAGS)
