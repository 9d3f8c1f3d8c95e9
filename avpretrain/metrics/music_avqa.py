"""Audio-visual question answering accuracy (MUSIC-AVQA) as the official test loop reports it.

Follows GeWu-Lab/MUSIC-AVQA ``net_grd_avst/main_avst.py:test``: each test question is right or
wrong (``argmax`` of the answer logits equals the label index), tallied by its ``type`` field
(``ast.literal_eval`` of e.g. ``'["Audio", "Counting"]'``). Reproduced as is:

- Nine question types: Audio (Counting, Comparative), Visual (Counting, Location), Audio-Visual
  (Existential, Counting, Location, Comparative, Temporal).
- Type accuracy = correct / questions of that type. Modality accuracy pools the questions of its
  types (weighted by sample count, not the mean of the type accuracies). Overall = correct / all
  questions, including any whose type is none of the nine (the per-type lists skip those).
- Keys are the official printed names without " Accuracy" (``"Audio Cmp"``, ``"AV counting"``
  with its lower-case c, ...), in the printed order. Values are fractions in [0, 1] (the official
  script prints percentages).
- Deviation: the official script divides by zero when a type has no question; here that type
  (and a modality without any) is left out of the result.

Answers may be class indices or strings; a prediction is right when it equals the true answer.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from avpretrain.metrics._arrays import to_numpy

log = logging.getLogger(__name__)

# (modality, question type) -> official printed name, in the printed order
TYPE_NAMES: dict[tuple[str, str], str] = {
    ("Audio", "Counting"): "Audio Counting",
    ("Audio", "Comparative"): "Audio Cmp",
    ("Visual", "Counting"): "Visual Counting",
    ("Visual", "Location"): "Visual Loc",
    ("Audio-Visual", "Existential"): "AV Ext",
    ("Audio-Visual", "Counting"): "AV counting",
    ("Audio-Visual", "Location"): "AV Loc",
    ("Audio-Visual", "Comparative"): "AV Cmp",
    ("Audio-Visual", "Temporal"): "AV Temporal",
}
MODALITY_NAMES = {"Audio": "Audio", "Visual": "Visual", "Audio-Visual": "AV"}
_TYPES = list(TYPE_NAMES)  # the state slot of each of the nine types


def parse_type(value: Any) -> tuple[str, str]:
    """``(modality, question type)`` from a pair or the dataset's string ``'["Audio", "Counting"]'``.

    Raises:
        ValueError: not a pair of strings.
    """
    pair = value
    if isinstance(value, str):
        try:
            pair = ast.literal_eval(value)
        except (ValueError, SyntaxError) as err:
            raise ValueError(f"question type {value!r} is not a list literal") from err
    if (
        not isinstance(pair, (list, tuple))
        or len(pair) != 2
        or not all(isinstance(x, str) for x in pair)
    ):
        raise ValueError(f"question type {value!r}: expected [modality, type]")
    return pair[0], pair[1]


def _answers(x: Any, name: str) -> list[Any]:
    if isinstance(x, (list, tuple)):
        return list(x)
    return to_numpy(x, name, 1).tolist()


class AVQAAccuracy(Metric):
    """Accuracy per question type, per modality and overall, over the questions since ``reset``.

    Right answers and questions are counted per type in ``sum`` states (the nine types of
    :data:`TYPE_NAMES`, then one slot for any other type), so under DDP ``compute`` tallies
    every rank's questions.

    Args:
        **kwargs: ``torchmetrics.Metric`` options (e.g. ``sync_on_compute``).
    """

    full_state_update = False
    correct: Tensor
    total: Tensor

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        slots = len(_TYPES) + 1  # the last counts the questions of other types
        self.add_state(
            "correct", default=torch.zeros(slots, dtype=torch.long), dist_reduce_fx="sum"
        )
        self.add_state("total", default=torch.zeros(slots, dtype=torch.long), dist_reduce_fx="sum")
        self._other: set[tuple[str, str]] = set()  # other types warned about since reset

    def update(self, pred_answers: Any, true_answers: Any, types: Sequence[Any]) -> None:
        """Tally a batch of questions.

        Args:
            pred_answers: [B] predicted answers (indices or strings; a tensor or a list).
            true_answers: [B] true answers, same kind.
            types: B question types, each ``(modality, type)`` or the dataset's type string.
        """
        pred = _answers(pred_answers, "pred_answers")
        true = _answers(true_answers, "true_answers")
        if not len(pred) == len(true) == len(types):
            raise ValueError(
                f"{len(pred)} predictions, {len(true)} answers and {len(types)} types differ"
            )
        correct, total = torch.zeros_like(self.correct), torch.zeros_like(self.total)
        for p, t, kind in zip(pred, true, types, strict=True):
            key = parse_type(kind)
            slot = _TYPES.index(key) if key in TYPE_NAMES else len(_TYPES)
            if slot == len(_TYPES) and key not in self._other:
                log.warning("question type %s is not one of the nine: counted in Overall only", key)
                self._other.add(key)
            total[slot] += 1
            correct[slot] += int(p == t)
        self.total += total
        self.correct += correct

    def reset(self) -> None:
        """Forget everything collected (and which other types were warned about)."""
        super().reset()
        self._other = set()

    def compute(self) -> dict[str, float]:
        """Accuracies keyed by the official printed names, then ``"Overall"`` and ``count``.

        ``count`` is the number of questions (of every type).
        """
        correct, total = self.correct.tolist(), self.total.tolist()
        if not sum(total):
            raise ValueError("AVQAAccuracy.compute: no update since reset")
        out: dict[str, float] = {}
        for modality, short in MODALITY_NAMES.items():
            slots = [i for i, k in enumerate(_TYPES) if k[0] == modality and total[i]]
            for i in slots:
                out[TYPE_NAMES[_TYPES[i]]] = correct[i] / total[i]
            if slots:
                out[short] = sum(correct[i] for i in slots) / sum(total[i] for i in slots)
        out["Overall"] = sum(correct) / sum(total)
        return {**out, "count": float(sum(total))}
