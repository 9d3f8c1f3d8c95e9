"""Question-answer targets for audio-visual question answering (an ``AVDataModule`` target).

Every question of a clip is returned, in every split: the task samples the training questions
itself (with the seeded torch RNG, not the loader workers') and answers all of them in
validation and test, so accuracy covers every question once. Questions stay strings (they
collate into a list of B lists); the task maps answers onto its answer vocabulary, which it
owns (fixed for the synthetic world, a file for MUSIC-AVQA).

Two stored layouts are read:

- the synthetic world: ``synthetic.questions`` = ``[{question, answer, type, modality}]`` with
  lower-case names (``"audio-visual"``, ``"counting"``; ``avpretrain.data.synthetic.questions``);
- MUSIC-AVQA ingested from ``avpretrain convert-music-avqa``: ``annotations.questions`` =
  ``[{question, answer, modality, type, question_id}]`` with the official names
  (``"Audio-Visual"``, ``"Counting"``).

Both become ``{"question", "answer", "modality", "type"}`` with the official names, the form
:class:`~avpretrain.metrics.music_avqa.AVQAAccuracy` tallies by.
"""

from __future__ import annotations

from typing import Any

from avpretrain.metrics.music_avqa import TYPE_NAMES

# lower-case spelling -> the official one, for both modality and question type
_OFFICIAL = {name.lower(): name for pair in TYPE_NAMES for name in pair}


def official_name(name: str) -> str:
    """The official spelling of a modality or question type.

    ``"audio-visual"`` -> ``"Audio-Visual"``; names outside the nine types are returned unchanged.
    """
    return _OFFICIAL.get(str(name).lower(), str(name))


def _stored_questions(meta: dict[str, Any]) -> Any:
    annotations = meta.get("annotations")
    if isinstance(annotations, dict) and "questions" in annotations:
        return annotations["questions"]
    synthetic = meta.get("synthetic")
    if isinstance(synthetic, dict) and "questions" in synthetic:
        return synthetic["questions"]
    return None


def question_targets(
    sample: dict[str, Any], meta: dict[str, Any], opts: Any
) -> dict[str, list[dict[str, str]]]:
    """``{"questions": [{"question", "answer", "modality", "type"}, ...]}``, all of the clip's.

    Args:
        sample: the raw shard sample (only its ``__key__`` is used, for errors).
        meta: the clip's parsed JSON.
        opts: the loader's ``SampleOptions`` (unused: sampling is the task's).

    Raises:
        ValueError: no questions, or a question without its fields. The loader logs the clip's
            key and shard with this message and counts it as skipped.
    """
    key = sample.get("__key__")
    stored = _stored_questions(meta)
    if not isinstance(stored, list) or not stored:
        raise ValueError(
            f"clip {key!r} has no questions (JSON 'annotations.questions' or "
            f"'synthetic.questions'); ingest MUSIC-AVQA from the convert-music-avqa manifest"
        )
    out = []
    for i, q in enumerate(stored):
        missing = [f for f in ("question", "answer", "modality", "type") if f not in q]
        if missing:
            raise ValueError(f"clip {key!r}: question {i} lacks {missing}")
        out.append(
            {
                "question": str(q["question"]),
                "answer": str(q["answer"]),
                "modality": official_name(q["modality"]),
                "type": official_name(q["type"]),
            }
        )
    return {"questions": out}
