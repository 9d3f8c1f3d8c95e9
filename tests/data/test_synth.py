"""The synthetic world: determinism, ground-truth consistency, corruptions, CLI, class sounds."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from avpretrain.data.audio_codec import decode_flac
from avpretrain.data.shards import read_index
from avpretrain.data.synthetic import world as synth
from avpretrain.data.synthetic.audio import class_waveform
from avpretrain.data.synthetic.classes import MAX_CLASSES, class_spec, class_table
from avpretrain.data.synthetic.clip import make_sample, shift_is_visible, swap_is_visible
from avpretrain.data.synthetic.questions import ANSWER_VOCAB
from avpretrain.data.synthetic.scene import MARK_SCALE, ObjectPlan
from avpretrain.data.synthetic.world import SynthConfig, main, write_world

# FLAC stores 16-bit PCM: decoded audio is within one quantisation step of the float signal.
PCM_STEP = 1.0 / 32768


def load_split(folder: Path) -> dict[str, dict]:
    """Every clip of a split: ``{key: {"meta", "audio", "masks", "sources", "source_object"}}``."""
    members: dict[str, dict[str, bytes]] = {}
    for shard in read_index(folder)["shards"]:
        with tarfile.open(shard["url"]) as tar:
            for m in tar.getmembers():
                key, ext = m.name.split(".", 1)
                members.setdefault(key, {})[ext] = tar.extractfile(m).read()
    clips = {}
    for key, raw in members.items():
        gt = np.load(io.BytesIO(raw["gt.npz"]))
        clips[key] = {
            "raw": raw,
            "meta": json.loads(raw["json"]),
            "audio": decode_flac(raw["flac"])[0],
            **{name: gt[name] for name in ("masks", "sources", "source_object")},
        }
    return clips


@pytest.fixture(scope="module")
def train(tiny_world: Path) -> dict[str, dict]:
    return load_split(tiny_world / "train")


def test_same_seed_same_bytes_other_seed_differs(tiny_world_config: SynthConfig) -> None:
    a = make_sample(tiny_world_config, "train", 5)
    b = make_sample(tiny_world_config, "train", 5)
    c = make_sample(replace(tiny_world_config, seed=1), "train", 5)
    assert a.keys() == b.keys()
    assert all(a[k] == b[k] for k in a)
    assert a["flac"] != c["flac"] and a["f00.jpg"] != c["f00.jpg"]
    # train and val are distinct streams
    assert make_sample(tiny_world_config, "val", 5)["flac"] != a["flac"]


def test_written_world_matches_clips_whatever_the_workers(tmp_path: Path, train, tiny_world_config):
    for key in ("train-000000", "train-000013"):
        fresh = make_sample(tiny_world_config, "train", int(key.split("-")[1]))
        assert all(train[key]["raw"][k] == fresh[k] for k in fresh if k != "__key__")
    cfg = replace(tiny_world_config, clips=4, val_clips=0, shard_size=2)
    one = load_split(Path(write_world(tmp_path / "one", cfg)["out"]) / "train")
    two = load_split(Path(write_world(tmp_path / "two", cfg, workers=2)["out"]) / "train")
    assert one.keys() == two.keys() and len(one) == 4
    assert all(one[k]["raw"] == two[k]["raw"] for k in one)


def test_masks_lie_in_boxes_and_exist_exactly_for_on_screen_objects(train) -> None:
    for clip in train.values():
        objects = clip["meta"]["synthetic"]["objects"]
        masks = clip["masks"]
        assert masks.dtype == np.uint8 and masks.shape == (4, 32, 32)
        assert masks.max() <= len(objects)
        for i, obj in enumerate(objects):
            if not obj["on_screen"]:
                assert obj["boxes"] is None and not (masks == i + 1).any()
                continue
            assert len(obj["boxes"]) == masks.shape[0]
            for f, (x0, y0, x1, y1) in enumerate(obj["boxes"]):
                ys, xs = np.nonzero(masks[f] == i + 1)
                assert len(xs) > 0, "an on-screen object must show in every frame"
                # pixel centres lie inside the box
                assert (xs + 0.5 >= x0).all() and (xs + 0.5 <= x1).all()
                assert (ys + 0.5 >= y0).all() and (ys + 0.5 <= y1).all()


def test_sources_sum_to_the_stored_mixture(train) -> None:
    for clip in train.values():
        objects = clip["meta"]["synthetic"]["objects"]
        sounding = [i for i, o in enumerate(objects) if o["sounding"]]
        assert clip["source_object"].tolist() == sounding
        assert clip["sources"].shape == (len(sounding), 32000)
        assert clip["sources"].dtype == np.float32
        np.testing.assert_allclose(clip["audio"], clip["sources"].sum(0), rtol=0, atol=PCM_STEP)
        assert np.abs(clip["audio"]).max() < 0.95


def test_audio_on_events_labels_and_category_agree_with_sources(train) -> None:
    for clip in train.values():
        meta = clip["meta"]
        objects, events = meta["synthetic"]["objects"], meta["synthetic"]["events"]
        for s, obj_index in enumerate(clip["source_object"]):
            obj = objects[obj_index]
            per_second = (clip["sources"][s].reshape(2, 16000).astype(np.float64) ** 2).mean(1)
            assert [int(e > 1e-3 * obj["loudness"] ** 2) for e in per_second] == obj["audio_on"]
            assert per_second[np.array(obj["audio_on"]) == 0].max(initial=0) == 0
            on_samples = 16000 * sum(obj["audio_on"])
            rms = np.sqrt(per_second.sum() * 16000 / on_samples)
            assert rms == pytest.approx(obj["loudness"], rel=1e-3)
        for o in objects:
            assert o["visual_on"] == [int(o["on_screen"])] * 2
            if not o["sounding"]:
                assert o["audio_on"] == [0, 0] and o["loudness"] is None
        for s in range(2):
            assert events["audio"][s] == sorted(o["class_id"] for o in objects if o["audio_on"][s])
            assert events["visual"][s] == sorted(o["class_id"] for o in objects if o["on_screen"])
        heard = [o for o in objects if o["sounding"]]
        assert sorted(meta["labels"]) == sorted(o["class_id"] for o in heard)
        assert meta["labels"][0] == next(
            o["class_id"] for o in heard if o["class_name"] == meta["category"]
        )
        assert meta["category"] == max(heard, key=lambda o: o["loudness"])["class_name"]


def test_sounding_objects_grow_while_their_sound_is_on(train) -> None:
    compared = 0
    for clip in train.values():
        for obj in clip["meta"]["synthetic"]["objects"]:
            if not (obj["on_screen"] and obj["sounding"]) or len(set(obj["audio_on"])) < 2:
                continue
            # frames at 0.25, 0.75 s fall in second 0; 1.25, 1.75 s in second 1
            widths = [b[2] - b[0] for b in obj["boxes"]]
            if min(widths) == 0 or any(b[0] == 0 or b[2] == 32 for b in obj["boxes"]):
                continue  # clipped by the frame edge
            on, off = (widths[0], widths[2]) if obj["audio_on"][0] else (widths[2], widths[0])
            assert on / off == pytest.approx(MARK_SCALE, abs=0.02)
            compared += 1
    assert compared > 0


def test_answers_agree_with_ground_truth(train) -> None:
    seen = set()
    for clip in train.values():
        synthetic = clip["meta"]["synthetic"]
        objects = synthetic["objects"]
        for qa in synthetic["questions"]:
            assert qa["answer"] in ANSWER_VOCAB
            seen.add((qa["modality"], qa["type"]))
            kind = (qa["modality"], qa["type"])
            if kind == ("audio", "counting"):
                assert int(qa["answer"]) == len(clip["source_object"])
            elif kind == ("visual", "counting"):
                assert int(qa["answer"]) == sum(o["on_screen"] for o in objects)
            elif kind == ("audio-visual", "counting"):
                assert int(qa["answer"]) == sum(o["on_screen"] and o["sounding"] for o in objects)
            elif kind == ("audio", "comparative"):
                named = [o for o in objects if o["class_name"] in qa["question"]]
                assert qa["answer"] == max(named, key=lambda o: o["loudness"])["class_name"]
            elif kind == ("audio-visual", "location"):
                (obj,) = [o for o in objects if f"the {o['class_name']} sound" in qa["question"]]
                assert qa["answer"] == obj["location"]
    assert seen == {
        ("audio", "counting"), ("audio", "comparative"),
        ("visual", "counting"), ("visual", "location"),
        ("audio-visual", "existential"), ("audio-visual", "location"),
        ("audio-visual", "counting"), ("audio-visual", "comparative"),
        ("audio-visual", "temporal"),
    }  # fmt: skip


def test_corrupted_clips_are_flagged_and_take_from_the_named_clip(
    tiny_world: Path, tiny_world_corrupt: Path, train
) -> None:
    bad = load_split(tiny_world_corrupt / "train")
    kinds = [c["meta"]["synthetic"]["corruption"] for c in bad.values()]
    assert {k: kinds.count(k) for k in set(kinds)} == {
        None: 15,
        "swap_audio": 3,
        "shift_audio": 3,
        "swap_caption": 3,
    }
    for key, clip in bad.items():
        syn, clean = clip["meta"]["synthetic"], train[key]
        kind, src = syn["corruption"], syn["source_index"]
        mixture = clean["sources"].sum(0)
        if kind is None:
            assert clip["raw"] == clean["raw"]
            continue
        # frames and ground truth stay those of the clean clip
        assert clip["raw"]["f00.jpg"] == clean["raw"]["f00.jpg"]
        np.testing.assert_array_equal(clip["sources"], clean["sources"])
        if kind == "swap_audio":
            other = train[f"train-{src:06d}"]["sources"].sum(0)
            assert train[f"train-{src:06d}"]["meta"]["labels"] != clean["meta"]["labels"]
            # the frames contradict the new audio: an on-screen object's drawn state is wrong
            heard = set(train[f"train-{src:06d}"]["meta"]["labels"])
            assert any(
                o["on_screen"] and o["sounding"] != (o["class_id"] in heard) for o in syn["objects"]
            )
            np.testing.assert_allclose(clip["audio"], other, rtol=0, atol=PCM_STEP)
            assert np.abs(clip["audio"] - mixture).max() > 0.01
        elif kind == "shift_audio":
            shift = round(syn["shift_seconds"] * 16000)
            assert src is None and 8000 <= shift <= 24000
            np.testing.assert_allclose(clip["audio"], np.roll(mixture, shift), atol=PCM_STEP)
            # some frame shows a sounding object marked while the sound now there is off (or
            # the reverse): seconds of the frame's own moment and of the moment now heard
            times = clip["meta"]["frame_times"]
            assert any(
                o["on_screen"]
                and o["audio_on"][int(t)] != o["audio_on"][int((t - shift / 16000) % 2)]
                for o in syn["objects"]
                for t in times
            )
        else:
            assert clip["meta"]["caption"] == train[f"train-{src:06d}"]["meta"]["caption"]
            assert clip["meta"]["caption"] != clean["meta"]["caption"]
            np.testing.assert_allclose(clip["audio"], mixture, rtol=0, atol=PCM_STEP)


def test_cli_writes_shards_and_index(tmp_path: Path, capsys) -> None:
    argv = ["--out", str(tmp_path), "--clips", "5", "--val-clips", "2", "--classes", "3"]
    argv += ["--seconds", "1", "--frames", "2", "--frame-size", "16", "--shard-size", "2"]
    assert main(argv) == 0
    assert "5 train + 2 val clips" in capsys.readouterr().out
    train_index, val_index = read_index(tmp_path / "train"), read_index(tmp_path / "val")
    assert [s["samples"] for s in train_index["shards"]] == [2, 2, 1]
    assert [s["name"] for s in train_index["shards"]][0] == "synth-000000.tar"
    assert val_index["total"] == 2 and train_index["synth"]["num_classes"] == 3
    assert [c["name"] for c in train_index["classes"]] == ["bell", "flute", "drum"]
    # the vocabulary the music_avqa recipe reads (answers.json beside train/ and val/)
    answers = json.loads((tmp_path / "answers.json").read_text())
    assert answers == list(ANSWER_VOCAB) and len(set(answers)) == len(answers)
    clip = next(iter(load_split(tmp_path / "val").values()))
    assert clip["masks"].shape == (2, 16, 16) and clip["audio"].shape == (16000,)
    assert max(clip["meta"]["labels"]) < 3
    assert main(["--out", str(tmp_path), "--clips", "1", "--corrupt", "0.5"]) == 2


def test_class_sounds_have_their_pitch_and_looks_are_unique() -> None:
    sr, n = 16000, 16000
    rng = np.random.default_rng(0)
    for spec in class_table(12):
        wave = class_waveform(spec, n, sr, rng)
        assert np.sqrt(np.mean(wave**2)) == pytest.approx(1.0)
        power = np.abs(np.fft.rfft(wave)) ** 2
        freqs = np.fft.rfftfreq(n, 1 / sr)
        if spec.sound == "tone":
            # envelopes move power into sidebands, never off the fundamental's bin
            assert freqs[power.argmax()] == pytest.approx(spec.pitch, abs=1.0)
        else:
            centroid = np.exp((power * np.log(freqs + 1e-9)).sum() / power.sum())
            assert spec.pitch * 0.85 < centroid < spec.pitch * 1.15
    specs = [class_spec(c) for c in range(MAX_CLASSES)]
    assert len({(s.shape, s.colour, s.texture) for s in specs}) == MAX_CLASSES
    pitches = sorted(s.pitch for s in class_table(8))
    assert min(b / a for a, b in zip(pitches, pitches[1:], strict=False)) > 1.05


def _obj(class_id: int, sounding: bool, on_screen: bool, audio_on: list[int]) -> ObjectPlan:
    cell = 0 if on_screen else None
    level = -10.0 if sounding else None
    return ObjectPlan(class_id, sounding, on_screen, cell, 3.0, (5, 5), (5, 5), audio_on, level)


def test_shift_visibility_worked_by_hand() -> None:
    times = [0.5, 1.5, 2.5]  # one frame per second of a 3 s clip
    steady = [_obj(0, True, True, [1, 1, 1])]
    assert not shift_is_visible(steady, times, 3.0, 1.0)  # on at every moment, any shift
    # on in second 0 only: rolled by 1 s, the frame at 1.5 s (drawn off) hears second 0 (on)
    burst = [_obj(1, True, True, [1, 0, 0])]
    assert shift_is_visible(burst, times, 3.0, 1.0)
    # the same sound heard off-screen: nothing drawn, nothing to see
    assert not shift_is_visible([_obj(1, True, False, [1, 0, 0])], times, 3.0, 1.0)
    # a single frame at 2.5 s with the sound in seconds 1 and 2: a 1 s roll plays second 1 (on)
    # where second 2 (on) was, invisible; a 2 s roll plays second 0 (off)
    late = [_obj(2, True, True, [0, 1, 1])]
    assert not shift_is_visible(late, [2.5], 3.0, 1.0)
    assert shift_is_visible(late, [2.5], 3.0, 2.0)


def test_swap_visibility_worked_by_hand() -> None:
    # on screen: a sounding 0 and a silent 1; off screen: a sounding 2
    clip = [_obj(0, True, True, [1]), _obj(1, False, True, [0]), _obj(2, True, False, [1])]
    sounds = lambda *ids: [_obj(i, True, False, [1]) for i in ids]  # noqa: E731
    assert not swap_is_visible(clip, sounds(0, 2))  # its own sounds
    assert not swap_is_visible(clip, sounds(0, 3))  # 3 could be one more off-screen source
    assert swap_is_visible(clip, sounds(2, 3))  # the drawn-sounding 0 is not heard
    assert swap_is_visible(clip, sounds(0, 1))  # the drawn-silent 1 is heard


def test_cli_sets_every_field_by_old_name_new_name_or_dashes(tmp_path: Path, monkeypatch) -> None:
    seen = {}

    def write(out: str, cfg: SynthConfig, workers: int) -> dict:
        seen["cfg"] = cfg
        split = {"clips": 0, "shards": 0, "corrupted": {}}
        return {"out": out, "seconds": 0.0, "train": split, "val": split}

    monkeypatch.setattr(synth, "write_world", write)
    argv = ["--out", str(tmp_path), "--clips", "8", "--frames", "3", "--clip_seconds", "2"]
    argv += ["--frame-size=32", "--silent-prob", "0.5", "--offscreen_prob", "0.1"]
    argv += ["--corrupt", "0.1", "--num-classes", "4", "--difficulty", "easy"]
    assert main(argv) == 0
    assert seen["cfg"] == SynthConfig(
        clips=8,
        num_frames=3,
        clip_seconds=2.0,
        frame_size=32,
        silent_prob=0.5,
        offscreen_prob=0.1,
        corrupt_fraction=0.1,
        num_classes=4,
        difficulty="easy",
    )


def test_cli_rejects_bad_choices_and_values(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--out", str(tmp_path), "--clips", "4", "--difficulty", "medium"])
    assert exit_.value.code == 2 and "difficulty" in capsys.readouterr().err
    assert main(["--out", str(tmp_path), "--clips", "4", "--silent-prob", "2"]) == 2
    assert "silent_prob must be in [0, 1]" in capsys.readouterr().err
