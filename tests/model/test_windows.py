"""The clip-window rule (model/windows.py), by hand."""

from __future__ import annotations

from model.config import WindowConfig
from model.windows import clip_windows, tile_ends


def test_a_segment_is_tiled_every_T_frames_plus_its_last_T():
    assert tile_ends(8, 4) == [3, 7]
    assert tile_ends(9, 4) == [3, 7, 8]
    assert tile_ends(4, 4) == [3]
    assert tile_ends(3, 4) == []


def test_clip_windows_are_every_segments_tiles_or_the_first_longest_short_segment():
    window = WindowConfig(length=4, min_length=2)
    assert clip_windows([5, 7], window) == [(0, 0, 4), (0, 1, 5), (1, 0, 4), (1, 3, 7)]
    assert clip_windows([3, 9, 2], window) == [(1, 0, 4), (1, 4, 8), (1, 5, 9)]  # no partial
    assert clip_windows([2, 3, 3], window) == [(1, 0, 3)]  # the first of the longest
    assert clip_windows([1, 1], window) == []  # under min_length
    assert clip_windows([], window) == []
