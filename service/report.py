"""Turning a scored session into the API's bodies (service/schemas.py): the result (the same
for an upload and a stream) and the stream's ready and per-frame messages."""

from __future__ import annotations

from model.gates import REASONS, QualityVerdict
from model.runtime import ClipResult, FrameResult, WindowScore
from service.engine import ScoringSession, Timing
from service.schemas import (
    FrameMessage,
    FrameReport,
    GateReason,
    Hint,
    LivenessResult,
    ReadyMessage,
    StreamLimits,
    TimingReport,
    WindowInfo,
    WindowReport,
)


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


def timing_ms(timing: Timing, total_s: float) -> TimingReport:
    return TimingReport(
        decode=round(timing.decode * 1000, 2),
        preprocess=round(timing.preprocess * 1000, 2),
        inference=round(timing.inference * 1000, 2),
        total=round(total_s * 1000, 2),
    )


def window_report(w: WindowScore, source: list[int]) -> WindowReport:
    return WindowReport(
        start=source[w.start],
        end=source[w.end],
        frames=[source[i] for i in w.frames],
        score=w.score,
        attention=w.attention,
    )


def frame_fields(f: FrameResult, source: list[int]) -> dict:
    """The ``FrameFields`` of a processed frame, with its index in the video or stream."""
    return {
        "index": source[f.index],
        "t": round(f.t, 6),
        "box": f.box,
        "faces": f.faces,
        "encoded": f.encoded,
    }


def frame_report(f: FrameResult, source: list[int], attention: dict[int, float]) -> FrameReport:
    return FrameReport(**frame_fields(f, source), attention=attention.get(f.index))


def gate_reasons(verdict: QualityVerdict) -> list[GateReason]:
    """The failed gates of a verdict, each with its hint and share."""
    return [
        GateReason(code=r, hint=REASONS[r], share=verdict.shares.get(r, 0.0))
        for r in verdict.reasons
    ]


def frame_hints(
    r: FrameResult, window: QualityVerdict | None, session: ScoringSession
) -> list[Hint]:
    """What is wrong with the capture at this frame: its own frame reasons, then the
    window's static or looped input."""
    gates = session.engine.gates
    if gates.mode == "off":
        return []
    codes = list(session.scorer.frame_reasons[r.index])  # the frame's, as the scorer read them
    if window is not None:
        codes += [c for c in window.reasons if c not in codes]
    return [Hint(code=c, hint=REASONS[c]) for c in codes]


def clip_report(
    session: ScoringSession,
    clip: ClipResult,
    *,
    request_id: str,
    frames_decoded: int,
    truncated: bool,
    total_s: float,
) -> LivenessResult:
    """The result body: score, label, per-frame and per-window detail, model, timings.
    Frame indices are those of the video (or of the stream as the client sent it)."""
    src = session.source_index
    return LivenessResult(
        request_id=request_id,
        score=clip.score,
        label=clip.label,
        model_label=clip.model_label,
        reasons=gate_reasons(clip.quality),
        gates=session.engine.gates.mode,
        threshold=clip.threshold,
        frames_decoded=frames_decoded,
        truncated=truncated,
        frames=[frame_report(f, src, clip.attention) for f in clip.frames],
        windows=[window_report(w, src) for w in clip.windows],
        aggregation=aggregation_text(clip, session.window.length),
        model=session.engine.describe_model(),
        timing_ms=timing_ms(session.timing, total_s),
    )


def ready_message(request_id: str, fps: float, session: ScoringSession) -> ReadyMessage:
    """The stream's first answer: its rates, the model, the window and the limits."""
    engine, s, window = session.engine, session.engine.settings, session.window
    return ReadyMessage(
        request_id=request_id,
        fps=fps,
        processing_fps=session.fps,
        model=engine.describe_model(),
        threshold=engine.threshold,
        gates=engine.gates.mode,
        window=WindowInfo(length=window.length, fps=window.fps, min_length=window.min_length),
        limits=StreamLimits(
            max_stream_fps=s.max_stream_fps,
            max_message_bytes=s.max_message_bytes,
            max_side=s.max_side,
            idle_seconds=s.stream_idle_seconds,
            max_seconds=s.stream_max_seconds,
            max_bad_frames=s.stream_max_bad_frames,
        ),
    )


def frame_message(
    session: ScoringSession,
    r: FrameResult,
    w: WindowScore | None,
    latency: float,
    dropped: int,
) -> FrameMessage:
    """One processed stream frame with ``w``, the latest window of its face track (None
    until one is full): its score, label (gated by the window's frames), attention and
    frame span, and the hints for this frame."""
    src = session.source_index
    label, verdict = (None, None) if w is None else session.scorer.window_label(w)
    if verdict is not None and session.engine.gates.mode == "off":
        verdict = None
    return FrameMessage(
        **frame_fields(r, src),
        score=None if w is None else w.score,
        label=label,
        hints=frame_hints(r, verdict, session),
        attention=None if w is None else w.attention,
        window=None if w is None else [src[w.start], src[w.end]],
        latency_ms=round(latency * 1000, 2),
        dropped=dropped,
    )
