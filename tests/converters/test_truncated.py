"""Every annotation reader refuses a file cut inside its last row, at every cut point.

A cut that leaves a row which still parses (``3.38`` cut to ``3.3``, a label list cut after its
first label) would otherwise become a wrong label with exit 0. Each reader gets a small valid
file (read once whole, as the reference), then every prefix of it that ends inside the last row.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from avpretrain.av_quality import rating_table
from avpretrain.converters import (
    audioset,
    avsbench,
    llp,
    music_avqa,
    sfqa,
    vggsound,
    vggss,
    yt_ntu_avq,
)
from avpretrain.data.tables import read_table

AUDIOSET_CLASSES = 'index,mid,display_name\n0,/m/09x0r,Speech\n1,/m/05zppz,"Male speech, man"\n'
MUSIC_AVQA = [
    {
        "video_id": "00000001",
        "question_id": 7,
        "type": '["Audio", "Counting"]',
        "question_content": "How many instruments are sounding?",
        "templ_values": "[]",
        "anser": "two",
    }
]
FLICKR = """<annotation>
  <object>
    <bbox><annotator>1</annotator><xmin>64</xmin><ymin>64</ymin><xmax>192</xmax><ymax>192</ymax></bbox>
  </object>
</annotation>
"""

# name -> (file name, whole text, reader); every reader raises ValueError on bad input
READERS: dict[str, tuple[str, str, Callable[[Path], Any]]] = {
    "yt_ntu_avq": (
        "meta.csv",
        "seq_name,score_all,score_v,score_a,std_all\nA_1,3.5,3.25,3.38,0.5\nB_2,4.0,4.1,3.9,0.7\n",
        lambda p: [yt_ntu_avq.annotations_of(row, w) for w, row in yt_ntu_avq.read_meta(p)],
    ),
    "sfqa": (
        "sfqa.csv",
        "video,source_image,source_audio,visual_mos,consistency_mos,method\n"
        "v1.mp4,p1,m1,71.5,60.25,SadTalker\nv2.mp4,p2,m2,40,55.5,Wav2Lip\n",
        sfqa.read_rows,
    ),
    "llp_weak": (
        "AVVP_train.csv",
        "filename\tevent_labels\nabc_10_20\tSpeech\nxyz_0_10\tSpeech,Dog,Cello\n",
        llp.read_weak,
    ),
    "llp_dense": (
        "AVVP_eval_audio.csv",
        "filename\tonset\toffset\tevent_labels\nabc_10_20\t0\t4\tSpeech\nabc_10_20\t5\t10\tDog\n",
        llp.read_dense,
    ),
    "audioset_classes": ("class_labels_indices.csv", AUDIOSET_CLASSES, audioset.read_class_indices),
    "audioset_segments": (
        "segments.csv",
        "# Segments csv\n# num_ytids=2\n# YTID, start_seconds, end_seconds, positive_labels\n"
        'aaa, 30.000, 40.000, "/m/09x0r"\nbbb, 10.000, 20.000, "/m/09x0r,/m/05zppz"\n',
        lambda p: audioset.read_segments(p, {"/m/09x0r": (0, "S"), "/m/05zppz": (1, "M")}),
    ),
    "vggsound": (
        "vggsound.csv",
        "---g-f_I2yQ,1,people marching,test\n--0PQM4-hqg,30,waterfall burbling,train\n",
        vggsound.read_vggsound,
    ),
    "vggsound_classes": ("classes.txt", "dog barking\ncat purring\n", vggsound.read_class_list),
    "vggsound_captions": (
        "captions.csv",
        "id,caption\nclip_1,a dog barks twice\nclip_2,rain on a tin roof\n",
        vggsound.read_captions,
    ),
    "avsbench": (
        "s4_meta_data.csv",
        "name,category,split\nvid_a,dog,train\nvid_b,ambulance_siren,test\n",
        lambda p: avsbench.read_meta(p, "s4"),
    ),
    "vggss_json": (
        "vggss.json",
        json.dumps([{"file": "abc_000010", "class": "dog", "bbox": [[0.1, 0.2, 0.5, 0.6]]}]),
        vggss.read_vggss,
    ),
    "vggss_ids": ("test_ids.csv", "abc_000010\nxyz_000020\n", vggss.read_ids),
    "flickr_xml": ("1000.xml", FLICKR, vggss.read_flickr_xml),
    "music_avqa": ("avqa-test.json", json.dumps(MUSIC_AVQA, indent=1), music_avqa.read_records),
    "ratings": (
        "ratings.csv",
        "subject,item,rating\ns1,clip_a,4\ns1,clip_b,35\n",
        lambda p: rating_table.read_ratings(p, ("subject",), None, "overall"),
    ),
    "reference": (
        "reference.csv",
        "item,level\nclip_a,4\nclip_b,2\n",
        rating_table.read_reference,
    ),
}


def _cuts(text: str, line_based: bool) -> list[int]:
    """Lengths of every prefix ending inside the last row: the last line of a line-based file
    (up to the whole line without its line break), the last 40 characters of JSON or XML."""
    body = text.rstrip("\n")
    if not line_based:
        return list(range(len(body) - 40, len(body)))
    return list(range(body.rfind("\n") + 2, len(body) + 1))


@pytest.mark.parametrize("name", sorted(READERS))
def test_reader_refuses_every_cut_inside_the_last_row(tmp_path, name):
    filename, text, reader = READERS[name]
    path = tmp_path / filename
    path.write_text(text)
    assert len(reader(path)) > 0  # the whole file reads
    line_based = not filename.endswith((".json", ".xml"))
    cuts = _cuts(text, line_based)
    assert len(cuts) >= 5
    for cut in cuts:
        path.write_text(text[:cut])
        with pytest.raises(ValueError, match=filename) as err:
            reader(path)
        if line_based:  # the line of the cut row is named
            assert f"{filename}:{text[:cut].count(chr(10)) + 1}" in str(err.value), (cut, err)


@pytest.mark.parametrize(
    ("row", "problem"),
    [("a,1,2,3", r"t.csv:3: 4 fields, the header has 3"), ("a,1", r"t.csv:3: 2 fields")],
)
def test_read_table_refuses_rows_of_the_wrong_length(tmp_path, row, problem):
    path = tmp_path / "t.csv"
    path.write_text(f"id,x,y\nz,0,0\n{row}\nw,1,1\n")
    with pytest.raises(ValueError, match=problem):
        read_table(path, ("id",), "a test table")


def test_read_table_refuses_an_unclosed_quote_and_accepts_a_byte_order_mark(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('id,caption\nz,"a dog\n')
    with pytest.raises(ValueError, match=r"t.csv:\d+: malformed CSV row"):
        read_table(path, ("id",), "a test table")
    path.write_bytes(b"\xef\xbb\xbfid,caption\nz,a dog\n")
    assert read_table(path, ("id",), "a test table") == [
        (f"{path}:2", {"id": "z", "caption": "a dog"})
    ]
