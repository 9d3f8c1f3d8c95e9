"""VGG-SS / Flickr test pairs (frames/<id>.jpg + audio/<id>.wav, EZ-VSL's test layout) ->
shards, read back through the localization targets."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import webdataset as wds
from PIL import Image

from avpretrain.converters.vggss_pairs import centre_crop, convert, main
from avpretrain.data.audio_codec import decode_flac
from avpretrain.data.loading.samples import SampleOptions
from avpretrain.data.shards import read_index
from avpretrain.tasks.targets.localization import flickr_box_targets, vggss_box_targets

VGGSS = [
    {"file": "zpWuikVorYg_000032", "class": "elk bugling", "bbox": [[0.25, 0.5, 0.75, 1.0]]},
    {"file": "gEvCUcZ6w88_000030", "class": "female speech", "bbox": [[0.1, 0.1, 0.2, 0.2]]},
]
FLICKR = """<annotation><object>
<bbox><i>1</i><xmin>0</xmin><ymin>0</ymin><xmax>128</xmax><ymax>256</ymax></bbox>
<bbox><i>2</i><xmin>0</xmin><ymin>0</ymin><xmax>64</xmax><ymax>256</ymax></bbox>
</object></annotation>"""


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    data = tmp_path / "test"
    (data / "frames").mkdir(parents=True)
    (data / "audio").mkdir()
    for name in ("zpWuikVorYg_000032", "10000130166"):  # the other VGG-SS pair is missing
        Image.new("RGB", (40, 30), (200, 10, 10)).save(data / "frames" / f"{name}.jpg")
        ramp = np.linspace(-0.5, 0.5, 16000, dtype=np.float32)  # 2 s at 8 kHz
        sf.write(data / "audio" / f"{name}.wav", np.stack([ramp, ramp], 1), 8000)
    return data


def read(out: Path) -> list[dict]:
    return [
        r for s in read_index(out)["shards"] for r in wds.WebDataset(s["url"], shardshuffle=False)
    ]


def gt_map(raw: dict, targets) -> np.ndarray:
    sample = {**raw, "__frames__": [raw["f00.jpg"]], "__frame_indices__": [0]}
    opts = SampleOptions(train=False, frame_size=32)
    return targets(sample, json.loads(raw["json"]), opts)["gt_map"].numpy()


def test_vggss_pairs(pairs, tmp_path):
    vggss = tmp_path / "vggss.json"
    vggss.write_text(json.dumps(VGGSS))
    out = tmp_path / "shards"
    summary = convert(vggss, pairs, out, size=32, centre_seconds=1.0)
    assert summary == {"pairs": 1, "missing_pairs": 1, "boxes": 1, "shards": 1}
    (raw,) = read(out)
    meta = json.loads(raw["json"])
    assert meta["video_id"] == "zpWuikVorYg_000032" and meta["category"] == "elk bugling"
    assert meta["annotations"] == {"boxes": [[0.25, 0.5, 0.75, 1.0]]}
    assert meta["end"] == 1.0 and meta["frame_times"] == [0.5]
    audio, rate = decode_flac(raw["flac"])
    assert rate == 16000 and len(audio) == 16000  # the middle 1 s of 2 s, resampled
    assert audio[8000] == pytest.approx(0.0, abs=2e-3)  # the ramp's centre stays in the middle
    expected = np.zeros((32, 32))
    expected[16:32, 8:24] = 1  # aspect not kept: boxes stay where they were, as in EZ-VSL
    np.testing.assert_array_equal(gt_map(raw, vggss_box_targets), expected)


def test_flickr_pairs_with_test_list(pairs, tmp_path, capsys):
    folder = tmp_path / "Annotations"
    folder.mkdir()
    for name in ("10000130166", "2401957951"):
        (folder / f"{name}.xml").write_text(FLICKR)
    ids = tmp_path / "flickr_test.csv"
    ids.write_text("10000130166,202\n")
    out = tmp_path / "flickr"
    argv = [str(folder), "--data", str(pairs), "--out", str(out), "--ids", str(ids)]
    assert main([*argv, "--size", "32"]) == 0
    assert json.loads(capsys.readouterr().out)["missing_pairs"] == 0  # 2401957951 not listed
    (raw,) = read(out)
    expected = np.zeros((32, 32))
    expected[:, 0:16] = 0.5  # annotator 1 alone: left half
    expected[:, 0:8] = 1.0  # both annotators
    np.testing.assert_array_equal(gt_map(raw, flickr_box_targets), expected)
    assert main([*argv, "--size", "32"]) == 2  # shards already there


def test_centre_crop():
    audio = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(centre_crop(audio, 0.4, 10), [3, 4, 5, 6])
    np.testing.assert_array_equal(centre_crop(audio, 3.0, 10), audio)
    assert centre_crop(audio, None, 10) is audio
