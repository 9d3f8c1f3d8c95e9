r"""MUSIC-AVQA question files -> an ``avpretrain ingest`` manifest, and the official vocabularies.

Reads GeWu-Lab/MUSIC-AVQA ``data/json/avqa-{train,val,test}.json``: a JSON list of records
``{"video_id", "question_id", "type": "[\"Audio\", \"Counting\"]", "question_content":
"Is the <Object> in the video always playing?", "templ_values": "[\"ukulele\"]",
"question_deleted", "anser"}`` - ``type`` and ``templ_values`` are strings holding a list, and
the answer key is spelled ``anser``.

Questions are filled in as ``net_grd_avst/dataloader_avst.py`` does: split on single spaces after
``rstrip``, drop the last character of the last word (the question mark), then replace every word
containing ``<`` by the next template value. The stored ``question`` is those words joined by
spaces, so ``question.split(" ")`` gives the official tokens back. ``question_deleted`` is ignored,
as there (every record is kept).

Output: one JSON line per video (first-seen order), ``id`` = ``video_id``, the clip seconds
0-``clip_seconds`` (the videos are 60 s long), ``annotations`` = ``{"questions": [{"question",
"answer", "modality", "type", "question_id"}, ...]}`` in file order. The answer classes are
:func:`answer_vocabulary` of the *train* records (42 answers), written with ``answer_vocab_out``.
"""

from __future__ import annotations

import ast
import json
import logging
from pathlib import Path
from typing import Any

from avpretrain.converters.common import (
    MANIFEST_FLAGS,
    VideoFinder,
    log_missing,
    run_function,
    write_jsonl,
)
from avpretrain.metrics.music_avqa import parse_type

log = logging.getLogger(__name__)

CLIP_SECONDS = 60.0
FIELDS = ("video_id", "question_id", "type", "question_content", "templ_values", "anser")


def _list_literal(value: Any, where: str) -> list[Any]:
    if isinstance(value, list):
        return value
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError, TypeError):
        parsed = None
    if not isinstance(parsed, list):
        raise ValueError(f"{where}: templ_values {value!r} is not a list")
    return parsed


def question_tokens(record: dict[str, Any]) -> list[str]:
    """The official question words: template values filled in, question mark dropped.

    Raises:
        ValueError: fewer template values than ``<...>`` placeholders.
    """
    where = f"question {record.get('question_id')}"
    words = str(record["question_content"]).rstrip().split(" ")
    words[-1] = words[-1][:-1]
    values = iter(_list_literal(record["templ_values"], where))
    try:
        return [str(next(values)) if "<" in w else w for w in words]
    except StopIteration:
        raise ValueError(f"{where}: more <...> placeholders than templ_values") from None


def answer_vocabulary(records: list[dict[str, Any]]) -> list[str]:
    """Answers in first-seen order (the official ``ans_vocab``; build it from the train records)."""
    return list(dict.fromkeys(str(r["anser"]) for r in records))


def question_vocabulary(records: list[dict[str, Any]]) -> list[str]:
    """``"<pad>"`` then question words in first-seen order (the official ``ques_vocab``)."""
    return list(dict.fromkeys(["<pad>", *(w for r in records for w in question_tokens(r))]))


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The question records of one MUSIC-AVQA JSON file, checked for the official fields."""
    path = Path(path)
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON: {err}") from err
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of question records")
    for i, record in enumerate(records):
        missing = [k for k in FIELDS if not isinstance(record, dict) or k not in record]
        if missing:
            raise ValueError(f"{path}: record {i} lacks {missing}")
    return records


def _question(record: dict[str, Any], where: str) -> dict[str, Any]:
    try:
        modality, qtype = parse_type(record["type"])
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    return {
        "question": " ".join(question_tokens(record)),
        "answer": str(record["anser"]),
        "modality": modality,
        "type": qtype,
        "question_id": record["question_id"],
    }


def convert(
    question_json: str | Path,
    video_dir: str | Path,
    out_jsonl: str | Path,
    clip_seconds: float = CLIP_SECONDS,
    check_videos: bool = True,
    answer_vocab_out: str | Path | None = None,
) -> dict[str, Any]:
    """Write the ingest manifest of one MUSIC-AVQA split.

    Args:
        question_json: ``avqa-train.json``, ``avqa-val.json`` or ``avqa-test.json``.
        video_dir: folder of the videos (searched recursively by ``<video_id>.<ext>``).
        out_jsonl: manifest to write.
        clip_seconds: clip length from second 0 (the videos are 60 s long).
        check_videos: skip (and log) videos not found; False writes guessed paths unchecked.
        answer_vocab_out: also write :func:`answer_vocabulary` of these records (a JSON list)
            here - do it for the train file.

    Returns:
        Summary: ``videos`` and ``questions`` written, ``missing_videos`` and the
        ``missing_questions`` left out with them, ``answers`` (distinct answers) and ``out``.
    """
    if clip_seconds <= 0:
        raise ValueError(f"clip_seconds must be > 0, got {clip_seconds}")
    records = read_records(question_json)
    by_video: dict[str, list[dict[str, Any]]] = {}
    for i, record in enumerate(records):
        question = _question(record, f"{question_json}: record {i}")
        by_video.setdefault(str(record["video_id"]), []).append(question)
    finder = VideoFinder(video_dir, check_videos)
    rows, missing, missing_questions = [], [], 0
    for video_id, questions in by_video.items():
        path = finder.find(video_id)
        if path is None:
            missing.append(video_id)
            missing_questions += len(questions)
            continue
        rows.append(
            {
                "path": str(path),
                "id": video_id,
                "start": 0.0,
                "end": float(clip_seconds),
                "annotations": {"questions": questions},
            }
        )
    log_missing(missing, finder.video_dir)
    count = write_jsonl(rows, out_jsonl)
    answers = answer_vocabulary(records)
    if answer_vocab_out is not None:
        Path(answer_vocab_out).parent.mkdir(parents=True, exist_ok=True)
        Path(answer_vocab_out).write_text(json.dumps(answers, indent=1) + "\n", encoding="utf-8")
    return {
        "videos": count,
        "questions": len(records) - missing_questions,
        "missing_videos": len(missing),
        "missing_questions": missing_questions,
        "answers": len(answers),
        "out": str(out_jsonl),
    }


def main(argv: list[str] | None = None) -> int:
    """Run ``avpretrain convert-music-avqa``; 0 on success, 1 if no video found, 2 on bad input."""
    description = "MUSIC-AVQA question JSON -> JSON Lines manifest for `avpretrain ingest`."
    aliases = {**MANIFEST_FLAGS, "answer-vocab": "answer_vocab_out"}
    return run_function("convert-music-avqa", convert, description, "videos", argv, aliases)
