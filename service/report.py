"""Turning a scored session into the API's result body (same for upload and stream)."""

from __future__ import annotations

from model.runtime import ClipResult, FrameResult, WindowScore
from service.engine import ScoringSession, Timing


def aggregation_text(clip: ClipResult, length: int) -> str:
    windows = clip.windows
    if len(windows) == 1 and len(windows[0].frames) < length:
        return (
            f"one window of {len(windows[0].frames)} encoded frames: the clip has fewer than "
            f"T={length} encoded frames of one face track, so its score is that window's"
        )
    return (
        f"mean of {len(windows)} window scores; windows tile each face track's encoded frames "
        f"in runs of T={length} (plus one over the track's last {length} when frames are "
        "left over); a frame's attention is its weight in the first window holding it"
    )


def timing_ms(timing: Timing, total_s: float) -> dict[str, float]:
    return {
        "decode": round(timing.decode * 1000, 2),
        "preprocess": round(timing.preprocess * 1000, 2),
        "inference": round(timing.inference * 1000, 2),
        "total": round(total_s * 1000, 2),
    }


def window_report(w: WindowScore, source: list[int]) -> dict:
    return {
        "start": source[w.start],
        "end": source[w.end],
        "frames": [source[i] for i in w.frames],
        "score": w.score,
        "attention": w.attention,
    }


def frame_report(f: FrameResult, source: list[int], attention: dict[int, float]) -> dict:
    return {
        "index": source[f.index],
        "t": round(f.t, 6),
        "box": f.box,
        "faces": f.faces,
        "encoded": f.encoded,
        "attention": attention.get(f.index),
    }


def clip_report(
    session: ScoringSession,
    clip: ClipResult,
    *,
    request_id: str,
    frames_decoded: int,
    truncated: bool,
    total_s: float,
) -> dict:
    """The result body: score, label, per-frame and per-window detail, model, timings.
    Frame indices are those of the video (or of the stream as the client sent it)."""
    src = session.source_index
    length = session.engine.model.manifest.preprocess.window.length
    return {
        "request_id": request_id,
        "score": clip.score,
        "label": clip.label,
        "threshold": clip.threshold,
        "frames_decoded": frames_decoded,
        "truncated": truncated,
        "frames": [frame_report(f, src, clip.attention) for f in clip.frames],
        "windows": [window_report(w, src) for w in clip.windows],
        "aggregation": aggregation_text(clip, length),
        "model": session.engine.describe_model(),
        "timing_ms": timing_ms(session.timing, total_s),
    }
