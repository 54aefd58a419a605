"""Which windows of a clip its score averages: the one tiling rule of serving and training.

Encoded frames of one face track form a *segment*. While streaming, once a segment holds
T features (``WindowConfig.length``) every new encoded frame is scored with the window of
the last T features (a sliding window; the head is cheap). The clip score uses the
windows that tile each segment: frames [0, T), [T, 2T), ... of the segment, plus, when
frames are left over, one window over the segment's last T frames. When no segment has T
frames, the first longest segment is scored as one shorter window if it holds at least
``WindowConfig.min_length`` frames; else the clip has no window ("too few frames"). The
clip score is the mean of those windows' scores; each frame reports its attention weight
in the first of those windows that contains it.

model/runtime.py applies the rule as the segments of a stream close; training scores
cached clips with it (training/cache.py), so a clip score computed in torch equals the one
the service computes in ONNX Runtime.
"""

from __future__ import annotations

from collections.abc import Sequence

from model.config import WindowConfig


def tile_ends(n: int, length: int) -> list[int]:
    """Positions (0-based, into a segment of ``n`` encoded frames) of the last frame of each
    full window that tiles the segment; empty when ``n < length``."""
    if n < length:
        return []
    ends = list(range(length - 1, n, length))
    if ends[-1] != n - 1:
        ends.append(n - 1)
    return ends


def clip_windows(
    segment_lengths: Sequence[int], window: WindowConfig
) -> list[tuple[int, int, int]]:
    """The clip's windows as (segment number, start, stop) over segments of these lengths:
    every segment's tiles, or the one shorter window, or none."""
    T = window.length
    tiles = [(s, e - T + 1, e + 1) for s, n in enumerate(segment_lengths) for e in tile_ends(n, T)]
    if tiles or not segment_lengths:
        return tiles
    longest = max(range(len(segment_lengths)), key=lambda s: (segment_lengths[s], -s))
    n = segment_lengths[longest]
    return [(longest, 0, n)] if n >= window.min_length else []
