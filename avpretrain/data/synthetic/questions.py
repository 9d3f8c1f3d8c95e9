"""Captions and question-answer pairs of a synthetic clip, derived from its ground truth.

Questions follow the music_avqa split by modality: audio (counting, comparative), visual
(counting, location) and audio-visual (existential, location, counting, comparative, temporal).
Every answer is a word of ``ANSWER_VOCAB``, fixed for all worlds, so a question-answering head
can classify over it.
"""

from __future__ import annotations

from typing import cast

import numpy as np

from avpretrain.data.synthetic.classes import CLASS_NAMES, ClassSpec
from avpretrain.data.synthetic.config import GRID
from avpretrain.data.synthetic.scene import LOCATIONS, OFF_SCREEN, ObjectPlan

_MAX_COUNT = GRID * GRID + 1
ANSWER_VOCAB: tuple[str, ...] = (
    "no",
    "yes",
    *(str(n) for n in range(_MAX_COUNT + 1)),
    *LOCATIONS,
    OFF_SCREEN,
    *CLASS_NAMES,
)
MODALITIES = ("audio", "visual", "audio-visual")
QUESTION_TYPES = ("counting", "comparative", "location", "existential", "temporal")


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def make_caption(objects: list[ObjectPlan], specs: list[ClassSpec]) -> str:
    """One sentence per object, e.g. ``"A red circle bell sounds at the top left."``."""
    sentences = []
    for obj, spec in zip(objects, specs, strict=True):
        thing = f"{spec.description} {spec.name}"
        if not obj.on_screen:
            sentence = f"{_article(spec.name)} is heard off-screen."
        elif obj.sounding:
            sentence = f"{_article(thing)} sounds at the {obj.location}."
        else:
            sentence = f"{_article('silent ' + thing)} sits at the {obj.location}."
        sentences.append(sentence[0].upper() + sentence[1:])
    return " ".join(sentences)


def _qa(question: str, answer: str, kind: str, modality: str) -> dict[str, str]:
    if answer not in ANSWER_VOCAB:
        raise RuntimeError(f"answer {answer!r} missing from ANSWER_VOCAB")
    return {"question": question, "answer": answer, "type": kind, "modality": modality}


def _onset(obj: ObjectPlan) -> int:
    return obj.audio_on.index(1)


def make_questions(
    objects: list[ObjectPlan],
    specs: list[ClassSpec],
    loudness: list[float | None],
    rng: np.random.Generator,
) -> list[dict[str, str]]:
    """Question-answer pairs about one clip.

    Args:
        objects: the clip's plan.
        specs: class of each object.
        loudness: per object, RMS of its source while on, or None if silent.
        rng: picks which objects the questions are about.

    Returns:
        list of ``{question, answer, type, modality}``; questions whose premise fails (e.g. a
        comparison with a single sounding object) are left out.
    """
    idx = range(len(objects))
    sounding = [i for i in idx if objects[i].sounding]
    visible = [i for i in idx if objects[i].on_screen]
    vis_sounding = [i for i in visible if objects[i].sounding]
    desc = [s.description for s in specs]
    ref = [f"the {desc[i]}" if objects[i].on_screen else f"the {specs[i].name}" for i in idx]

    def pick(pool: list[int], k: int) -> list[int]:
        return [pool[j] for j in rng.choice(len(pool), k, replace=False)]

    def louder(a: int, b: int) -> int:
        return a if cast(float, loudness[a]) > cast(float, loudness[b]) else b  # both sound

    qs = [_qa("How many different sounds can be heard?", str(len(sounding)), "counting", "audio")]
    if len(sounding) >= 2:
        a, b = pick(sounding, 2)
        q = f"Which is louder, the {specs[a].name} or the {specs[b].name}?"
        qs.append(_qa(q, specs[louder(a, b)].name, "comparative", "audio"))
    qs.append(_qa("How many objects are visible?", str(len(visible)), "counting", "visual"))
    (v,) = pick(visible, 1)
    qs.append(_qa(f"Where is the {desc[v]}?", objects[v].location, "location", "visual"))
    (v,) = pick(visible, 1)
    answer = "yes" if objects[v].sounding else "no"
    qs.append(_qa(f"Is the {desc[v]} making a sound?", answer, "existential", "audio-visual"))
    (s,) = pick(sounding, 1)
    q = f"Where does the {specs[s].name} sound come from?"
    qs.append(_qa(q, objects[s].location, "location", "audio-visual"))
    q = "How many visible objects make a sound?"
    qs.append(_qa(q, str(len(vis_sounding)), "counting", "audio-visual"))
    if len(vis_sounding) >= 2:
        a, b = pick(vis_sounding, 2)
        answer = "yes" if louder(a, b) == a else "no"
        q = f"Is the {desc[a]} louder than the {desc[b]}?"
        qs.append(_qa(q, answer, "comparative", "audio-visual"))
    pairs = [(a, b) for a in sounding for b in sounding if _onset(objects[a]) < _onset(objects[b])]
    if pairs:
        a, b = pairs[int(rng.integers(len(pairs)))]
        if rng.random() < 0.5:
            a, b = b, a
        first = a if _onset(objects[a]) < _onset(objects[b]) else b
        q = f"Which starts sounding first, {ref[a]} or {ref[b]}?"
        qs.append(_qa(q, specs[first].name, "temporal", "audio-visual"))
    else:
        answer = "yes" if objects[s].audio_on[0] else "no"
        q = f"Is {ref[s]} sounding at the start of the clip?"
        qs.append(_qa(q, answer, "temporal", "audio-visual"))
    return qs
