"""Dialog targets of audio-visual scene-aware dialog (an ``AVDataModule`` target).

Every round of a clip's dialog is returned, in every split: the task picks the training rounds
and the evaluated ones itself. Two stored layouts are read:

- AVSD from ``avpretrain convert-avsd``: ``annotations`` = ``{"dialog_id", "caption",
  "summary", "dialog": [{"question", "answer", "references"?}, ...]}`` (``references``: the
  DSTC7 test set's six answers of the last round; otherwise the answer is the one reference).
- The synthetic world, derived here from the clip's ground truth (``avpretrain.data`` is not
  changed for it): the caption is the JSON's ``caption``, and each templated question of
  ``synthetic.questions`` is one round, in stored order, its one-word answer turned into a
  sentence by :func:`answer_sentence` (a one-word answer has no 2- to 4-grams, so BLEU-4 could
  not tell answers apart).

Both become ``{"dialog": {"id", "caption", "summary", "turns": [{"question", "answer",
"references", "type"}, ...]}}``. ``type`` is the question type the majority-answer baseline
groups by: the synthetic ``"<modality> <type>"``; for AVSD, which has no types, the question's
first word (``"is"``, ``"what"``, ``"does"``, ...).
"""

from __future__ import annotations

from typing import Any

YES_NO = {"yes": "yes, it is.", "no": "no, it is not."}
# (modality, type) of the synthetic questions -> answer sentence around the one-word answer
_SENTENCES = {
    ("audio", "counting"): "i can hear {} different sounds.",
    ("visual", "counting"): "i can see {} objects.",
    ("audio-visual", "counting"): "{} of the visible objects make a sound.",
    ("audio", "comparative"): "the {} is louder.",
    ("visual", "location"): "it is at the {}.",
    ("audio-visual", "location"): "it comes from the {}.",
    ("audio-visual", "temporal"): "the {} starts first.",
}
_OFF_SCREEN = "off-screen"


def answer_sentence(answer: str, modality: str, qtype: str) -> str:
    """A synthetic one-word answer as a sentence.

    ``("3", "audio", "counting")`` -> ``"i can hear 3 different sounds."``; yes / no answers become
    ``"yes, it is."`` / ``"no, it is not."``; a location off-screen ``"it is off-screen."``; other
    types ``"<answer>."``.
    """
    answer = str(answer)
    if answer in YES_NO:
        return YES_NO[answer]
    if answer == _OFF_SCREEN:
        return "it is off-screen."
    template = _SENTENCES.get((str(modality).lower(), str(qtype).lower()), "{}.")
    return template.format(answer)


def question_type(question: str) -> str:
    """The first word of a question, lower case (AVSD's stand-in for a question type)."""
    words = question.lower().split()
    return words[0].strip("?,.") if words else ""


def _synthetic_dialog(key: Any, meta: dict[str, Any]) -> dict[str, Any]:
    questions = meta["synthetic"]["questions"]
    if not isinstance(questions, list) or not questions:
        raise ValueError(f"clip {key!r}: synthetic.questions is empty")
    turns = []
    for i, q in enumerate(questions):
        missing = [f for f in ("question", "answer", "modality", "type") if f not in q]
        if missing:
            raise ValueError(f"clip {key!r}: synthetic question {i} lacks {missing}")
        answer = answer_sentence(q["answer"], q["modality"], q["type"])
        turns.append(
            {
                "question": str(q["question"]),
                "answer": answer,
                "references": [answer],
                "type": f"{q['modality']} {q['type']}",
            }
        )
    caption = meta.get("caption") or ""
    return {"id": str(meta.get("video_id", key)), "caption": caption, "summary": "", "turns": turns}


def _avsd_dialog(key: Any, annotations: dict[str, Any]) -> dict[str, Any]:
    rounds = annotations["dialog"]
    if not isinstance(rounds, list) or not rounds:
        raise ValueError(f"clip {key!r}: annotations.dialog is empty")
    turns = []
    for i, r in enumerate(rounds):
        if not isinstance(r, dict) or "question" not in r or "answer" not in r:
            raise ValueError(f"clip {key!r}: annotations.dialog[{i}] lacks question or answer")
        refs = r.get("references") or [r["answer"]]
        turns.append(
            {
                "question": str(r["question"]),
                "answer": str(r["answer"]),
                "references": [str(x) for x in refs],
                "type": question_type(str(r["question"])),
            }
        )
    return {
        "id": str(annotations.get("dialog_id", key)),
        "caption": str(annotations.get("caption") or ""),
        "summary": str(annotations.get("summary") or ""),
        "turns": turns,
    }


def dialog_targets(sample: dict[str, Any], meta: dict[str, Any], opts: Any) -> dict[str, Any]:
    """``{"dialog": {"id", "caption", "summary", "turns": [...]}}`` (module docstring).

    Args:
        sample: the raw shard sample (only its ``__key__`` is used, for errors).
        meta: the clip's parsed JSON.
        opts: the loader's ``SampleOptions`` (unused).

    Raises:
        ValueError: no dialog, or a round without its fields. The loader logs the clip's key
            and shard with this message and counts it as skipped.
    """
    key = sample.get("__key__")
    annotations = meta.get("annotations")
    if isinstance(annotations, dict) and "dialog" in annotations:
        return {"dialog": _avsd_dialog(key, annotations)}
    synthetic = meta.get("synthetic")
    if isinstance(synthetic, dict) and "questions" in synthetic:
        return {"dialog": _synthetic_dialog(key, meta)}
    raise ValueError(
        f"clip {key!r} has no dialog (JSON 'annotations.dialog' or 'synthetic.questions'); "
        f"ingest AVSD from the convert-avsd manifest"
    )
