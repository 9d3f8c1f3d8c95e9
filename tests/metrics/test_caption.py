"""Caption metrics (AVSD): hand-checked cases and parity with pycocoevalcap called directly."""

from __future__ import annotations

import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

from avpretrain.metrics import caption
from avpretrain.metrics.caption import CaptionMetrics, caption_scores, simple_tokenize

needs_java = pytest.mark.skipif(not caption.java_available(), reason="java not on the PATH")

PREDICTIONS = {
    "v1#9": "Yes, he is holding a cup.",
    "v2#9": "no, there is no sound.",
    "v3#9": "he walks to the door and leaves",
    "v4#9": "",
}
REFERENCES = {
    "v1#9": ["yes he holds a cup in his hand.", "Yes, he's holding a cup.", "yes"],
    "v2#9": ["no , there is no audio ."],
    "v3#9": ["he walks out the door.", "the man leaves through the door"],
    "v4#9": ["i cannot tell."],
}


def test_simple_tokenizer_lowercases_and_drops_the_ptb_punctuation():
    assert simple_tokenize("Yes, he's in the kitchen.") == "yes he's in the kitchen"
    assert simple_tokenize("No -- it isn't!  (maybe)") == "no it isn't maybe"
    assert simple_tokenize("") == ""


def test_hand_checked_scores():
    # exact match: every n-gram precision 1, brevity 1, LCS = length
    scores, _ = caption_scores({1: "a man walks in"}, {1: ["a man walks in"]}, "simple", False)
    assert scores["Bleu_4"] == pytest.approx(1.0, abs=1e-6)
    assert scores["ROUGE_L"] == pytest.approx(1.0)
    # "a b c d" vs "a b x y": 2 of 4 unigrams, 1 of 3 bigrams, brevity 1
    scores, _ = caption_scores({1: "a b c d"}, {1: ["a b x y"]}, "simple", False)
    assert scores["Bleu_1"] == pytest.approx(0.5, abs=1e-6)
    assert scores["Bleu_2"] == pytest.approx((0.5 * 1 / 3) ** 0.5, abs=1e-6)
    # several references: the prediction equal to the second one scores as a perfect match
    refs = {1: ["something else entirely here", "the cup is red"]}
    scores, _ = caption_scores({1: "the cup is red"}, refs, "simple", False)
    assert scores["Bleu_4"] == pytest.approx(1.0, abs=1e-6)
    assert scores["ROUGE_L"] == pytest.approx(1.0)
    scores, _ = caption_scores({1: "zebra"}, {1: ["the cup is red"]}, "simple", False)
    assert scores["Bleu_1"] == pytest.approx(0.0, abs=1e-6) and scores["ROUGE_L"] == 0.0


@needs_java
def test_parity_with_pycocoevalcap_ptb_bleu_rouge_cider():
    ours, used = caption_scores(PREDICTIONS, REFERENCES, tokenizer="ptb", meteor=False)
    assert used == "ptb" and "METEOR" not in ours
    keys = sorted(PREDICTIONS)
    ptb = PTBTokenizer()
    gts = ptb.tokenize({i: [{"caption": r} for r in REFERENCES[k]] for i, k in enumerate(keys)})
    res = ptb.tokenize({i: [{"caption": PREDICTIONS[k]}] for i, k in enumerate(keys)})
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    direct = {f"Bleu_{n + 1}": b for n, b in enumerate(bleu)}
    direct["ROUGE_L"] = Rouge().compute_score(gts, res)[0]
    direct["CIDEr"] = Cider().compute_score(gts, res)[0]
    assert ours == pytest.approx(direct, abs=1e-12)
    assert 0.0 < ours["Bleu_1"] < 1.0 and ours["CIDEr"] > 0.0


@pytest.mark.slow  # two METEOR jars load their paraphrase tables: 10 s idle, 30 s+ loaded
@needs_java
def test_parity_with_pycocoevalcap_meteor():
    metric = CaptionMetrics()
    metric.update(list(PREDICTIONS), list(PREDICTIONS.values()), list(REFERENCES.values()))
    ours = metric.compute()
    assert ours["tokenizer"] == "ptb" and ours["answers"] == 4
    ptb = PTBTokenizer()
    keys = list(PREDICTIONS)
    gts = ptb.tokenize({i: [{"caption": r} for r in REFERENCES[k]] for i, k in enumerate(keys)})
    res = ptb.tokenize({i: [{"caption": PREDICTIONS[k]}] for i, k in enumerate(keys)})
    direct = Meteor().compute_score(gts, res)[0]
    assert ours["METEOR"] == pytest.approx(direct, abs=1e-12)
    assert 0.0 < ours["METEOR"] < 1.0


def test_without_java_the_simple_tokenizer_runs_and_meteor_is_left_out(monkeypatch):
    monkeypatch.setattr(caption.shutil, "which", lambda name: None)
    metric = CaptionMetrics()
    metric.update(["a", "b"], ["yes, it is.", "a dog"], ["Yes, it is.", ["a cat", "the dog"]])
    out = metric.compute()
    assert out["tokenizer"] == "simple" and "METEOR" not in out
    assert set(out) == {"Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"} | {
        "tokenizer",
        "answers",
    }
    with pytest.raises(ValueError, match="needs java"):
        caption_scores({1: "a"}, {1: ["a"]}, tokenizer="ptb")


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="different keys"):
        caption_scores({1: "a"}, {2: ["a"]})
    with pytest.raises(ValueError, match="no reference"):
        caption_scores({1: "a"}, {1: []})
    metric = CaptionMetrics()
    metric.update(["k"], ["a"], ["a"])
    with pytest.raises(ValueError, match="'k' added twice"):
        metric.update(["k"], ["b"], ["b"])
    with pytest.raises(ValueError, match="no update"):
        CaptionMetrics().compute()
