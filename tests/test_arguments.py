"""Literal choices checked at runtime, and older or dashed flag names mapped to field names."""

from __future__ import annotations

from typing import Literal

import pytest

from avpretrain.arguments import canonical_flags, check_choice, choices

Mode = Literal["a", "b"]


def test_check_choice_names_the_option_and_the_choices():
    assert choices(Mode) == ("a", "b")
    check_choice("mode", "a", Mode)
    with pytest.raises(ValueError, match=r"mode must be one of \('a', 'b'\), got 'c'"):
        check_choice("mode", "c", Mode)


def test_canonical_flags_rewrites_only_known_flags():
    argv = ["--frames", "3", "--frame-size=16", "--out", "a-b", "--other-flag", "--", "--frames"]
    names = {"num_frames", "frame_size", "out"}
    assert canonical_flags(argv, names, {"frames": "num_frames"}) == [
        "--num_frames",
        "3",
        "--frame_size=16",
        "--out",
        "a-b",
        "--other-flag",
        "--",
        "--frames",
    ]
