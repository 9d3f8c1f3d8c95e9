"""VGG-SS / Flickr-SoundNet converter on tiny files in the official formats, and the round trip
converter -> ``avpretrain ingest`` -> localization targets on a tiny PyAV video."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds
from PIL import Image

from avpretrain.converters.vggss import convert, main, parse_clip_name, read_flickr_xml
from avpretrain.data.ingest.runner import main as ingest_main
from avpretrain.data.loading.samples import SampleOptions
from avpretrain.data.schema import frame_exts
from avpretrain.data.shards import read_index
from avpretrain.tasks.targets.localization import flickr_box_targets, vggss_box_targets
from tests.data.videos import write_video

VGGSS = [
    {"file": "zpWuikVorYg_000032", "class": "elk bugling", "bbox": [[0.25, 0.5, 0.75, 1.0]]},
    {
        "file": "UyCw7pCgYg8_000055",
        "class": "tap dancing",
        "bbox": [[0.503125, 0.403125, 0.6468750000000001, 0.6625], [0, 1.0, 0.75, 1.0]],
    },
    {"file": "-d1KR2BSfHM_000065", "class": "squishing water", "bbox": []},
]

# the layout EZ-VSL's parser walks: root > child > <bbox>, first sub-element skipped
FLICKR = """<annotation>
  <filename>{name}.jpg</filename>
  <object>
    <bbox><annotator>1</annotator><a>0</a><b>0</b><c>128</c><d>128</d></bbox>
    <bbox><annotator>2</annotator><xmin>64</xmin><ymin>64</ymin><xmax>192</xmax><ymax>192</ymax></bbox>
  </object>
</annotation>
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("zpWuikVorYg_000032.mp4", "-d1KR2BSfHM_000065.mp4", "10000130166.mp4"):
        (videos / name).write_bytes(b"")
    vggss = tmp_path / "vggss.json"
    vggss.write_text(json.dumps(VGGSS))
    flickr = tmp_path / "Annotations"
    flickr.mkdir()
    for name in ("10000130166", "10007936344", "99"):
        (flickr / f"{name}.xml").write_text(FLICKR.format(name=name))
    test_csv = tmp_path / "flickr_test.csv"
    test_csv.write_text("10000130166,202\n10007936344,0\n")
    return {"videos": videos, "vggss": vggss, "flickr": flickr, "test_csv": test_csv}


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_vggss_rows(files, tmp_path):
    out = tmp_path / "vggss.jsonl"
    summary = convert(files["vggss"], files["videos"], out)
    assert summary == {
        "format": "vggss",
        "clips": 2,
        "missing_videos": 1,
        "boxes": 1,
        "out": str(out),
    }
    assert rows(out) == [
        {
            "path": str(files["videos"] / "zpWuikVorYg_000032.mp4"),
            "id": "zpWuikVorYg_000032",
            "start": 0.0,
            "end": 10.0,
            "category": "elk bugling",
            "annotations": {"boxes": [[0.25, 0.5, 0.75, 1.0]]},
        },
        {
            "path": str(files["videos"] / "-d1KR2BSfHM_000065.mp4"),
            "id": "-d1KR2BSfHM_000065",
            "start": 0.0,
            "end": 10.0,
            "category": "squishing water",
            "annotations": {"boxes": []},  # no visible source: scored as non-sounding
        },
    ]
    assert parse_clip_name("_Zl_z4n_T9M_000471") == ("_Zl_z4n_T9M", 471)


def test_vggss_untrimmed_and_id_list(files, tmp_path):
    ids = tmp_path / "vggss_test.csv"
    ids.write_text("UyCw7pCgYg8_000055\n")
    out = tmp_path / "o.jsonl"
    convert(files["vggss"], files["videos"], out, ids, "{ytid}.mkv", True, check_videos=False)
    (row,) = rows(out)
    assert row["path"] == str(files["videos"] / "UyCw7pCgYg8.mkv")
    assert (row["start"], row["end"]) == (55.0, 65.0)
    assert row["annotations"]["boxes"][1] == [0.0, 1.0, 0.75, 1.0]  # kept as given


def test_flickr_rows(files, tmp_path):
    out = tmp_path / "flickr.jsonl"
    summary = convert(files["flickr"], files["videos"], out, files["test_csv"], seconds=20.0)
    assert summary["format"] == "flickr" and summary["clips"] == 1
    assert summary["missing_videos"] == 1  # 10007936344 listed, no video; 99 not listed
    (row,) = rows(out)
    assert row == {
        "path": str(files["videos"] / "10000130166.mp4"),
        "id": "10000130166",
        "start": 0.0,
        "end": 20.0,
        "annotations": {"boxes": [[0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 0.75, 0.75]]},
    }


def test_flickr_map_through_the_targets(files):
    """Two annotators' boxes on a 64 x 64 frame, map 32 x 32: each box alone 0.5, overlap 1."""
    boxes = read_flickr_xml(files["flickr"] / "10000130166.xml")
    buf = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buf, format="JPEG")
    sample = {"__key__": "k", "__frames__": [buf.getvalue()], "__frame_indices__": [0]}
    opts = SampleOptions(train=False, frame_size=32)
    got = flickr_box_targets(sample, {"annotations": {"boxes": boxes}}, opts)
    expected = np.zeros((32, 32))
    expected[0:16, 0:16] += 0.5  # annotator 1: pixels 0-128 of 256
    expected[8:24, 8:24] += 0.5  # annotator 2: pixels 64-192 of 256
    np.testing.assert_array_equal(got["gt_map"].numpy(), expected)
    assert bool(got["has_gt"])


def test_round_trip_through_ingest_and_targets(files, tmp_path):
    """convert-vggss -> avpretrain ingest --frames 1 -> vggss_box_targets on the shard."""
    videos = tmp_path / "real"
    videos.mkdir()
    write_video(videos / "zpWuikVorYg_000032.mp4", 10.0, fps=2, size=(48, 48), audio_rate=16000)
    manifest = tmp_path / "test.jsonl"
    assert main([str(files["vggss"]), "--videos", str(videos), "--out", str(manifest)]) == 0
    shards = tmp_path / "shards"
    argv = [str(manifest), "--out", str(shards), "--frames", "1", "--short-side", "48"]
    assert ingest_main([*argv, "--workers", "1"]) == 0
    (shard,) = read_index(shards)["shards"]
    (raw,) = list(wds.WebDataset(shard["url"], shardshuffle=False))
    meta = json.loads(raw["json"])
    assert meta["video_id"] == "zpWuikVorYg_000032" and meta["frame_times"] == [5.0]
    assert meta["annotations"] == {"boxes": [[0.25, 0.5, 0.75, 1.0]]}
    sample = {"__key__": raw["__key__"], "__frames__": [raw[frame_exts(raw)[0]]]}
    sample["__frame_indices__"] = [0]
    got = vggss_box_targets(sample, meta, SampleOptions(train=False, frame_size=48))
    expected = np.zeros((48, 48))
    expected[24:48, 12:36] = 1  # x 0.25-0.75, y 0.5-1 of a 48 px square frame
    np.testing.assert_array_equal(got["gt_map"].numpy(), expected)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"file": "a_000001", "bbox": [[0.1, 0.2, 0.3]]}, r"entry 3 \(a_000001\): bbox \[0\.1"),
        ({"file": "a_000001", "bbox": [[0.1, "x", 0.3, 0.4]]}, r"entry 3 \(a_000001\): bbox"),
        ({"class": "dog", "bbox": []}, r"entry 3: needs 'file' and 'bbox'"),
    ],
)
def test_malformed_vggss_entries(files, tmp_path, entry, message):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([*VGGSS, entry]))
    with pytest.raises(ValueError, match=rf"bad\.json: {message}"):
        convert(bad, files["videos"], tmp_path / "o.jsonl")


def test_malformed_flickr_box(files, tmp_path, capsys):
    folder = tmp_path / "BadAnnotations"
    folder.mkdir()
    text = FLICKR.format(name="1").replace("<d>128</d>", "<d>1.5e2</d>")
    (folder / "1.xml").write_text(text)
    with pytest.raises(ValueError, match=r"1\.xml: <bbox> number 1: coordinates .* integers"):
        convert(folder, files["videos"], tmp_path / "o.jsonl")
    (folder / "1.xml").write_text(FLICKR.format(name="1").replace("<d>128</d>", ""))
    argv = [str(folder), "--videos", str(files["videos"]), "--out", str(tmp_path / "o.jsonl")]
    assert main(argv) == 2
    assert "1.xml: <bbox> number 1: bbox [0, 0, 128] is not" in capsys.readouterr().err


def test_bad_clip_name_names_the_file(files, tmp_path):
    bad = tmp_path / "names.json"
    bad.write_text(json.dumps([{"file": "no-start", "bbox": []}]))
    with pytest.raises(ValueError, match=r"names\.json: VGG-SS file 'no-start' is not"):
        convert(bad, files["videos"], tmp_path / "o.jsonl")
