"""Evaluation figures as PNG files: ROC and DET curves, score histograms, attention over time.

Figures are drawn on ``matplotlib.figure.Figure`` objects with the Agg canvas, never
through pyplot, so nothing here touches global backend state or needs a display.
Score conventions are those of ``training.evaluate.metrics`` (higher = more genuine).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.stats import norm

from model.labels import GENUINE, GENUINE_CLASS, SPOOF, SPOOF_CLASS
from training.evaluate.metrics import ScoreSet, det_curve, eer_threshold, roc_auc, roc_curve

# DET axes show error rates on a normal-deviate scale between these bounds; rates of 0
# or 1 (which the scale cannot show) are drawn at the bounds.
DET_LIMITS = (0.0005, 0.9995)
DET_TICKS = (0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999)
DPI = 100
THUMB_HEIGHT = 48  # pixels per thumbnail in the attention strip


class PlotError(ValueError):
    """Input that cannot be drawn (no systems, mismatched lengths, bad thumbnails)."""


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def _check_systems(systems: Mapping[str, ScoreSet]) -> None:
    if not systems:
        raise PlotError("no systems to plot")


def plot_roc(systems: Mapping[str, ScoreSet], path: Path, *, title: str = "ROC") -> Path:
    """ROC curves of several systems on one plot: FAR (APCER) on x, genuine accept rate on y."""
    _check_systems(systems)
    fig = _new_figure(5.5, 5.0)
    ax = fig.add_subplot()
    for name, s in systems.items():
        far, gar, _ = roc_curve(s.scores, s.labels)
        # straight segments between operating points: tied scores give the diagonal
        # piece whose area the AUC counts as 1/2
        auc = roc_auc(s.scores, s.labels)
        ax.plot(far, gar, label=f"{name} (AUC {100 * auc:.2f}%)")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=0.8)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), title=title)
    ax.set_xlabel("false accept rate (spoofs accepted)")
    ax.set_ylabel("genuine accept rate (1 - FRR)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return _save(fig, path)


def plot_det(systems: Mapping[str, ScoreSet], path: Path, *, title: str = "DET") -> Path:
    """DET curves (FAR vs FRR on normal-deviate axes) with each system's EER point marked."""
    _check_systems(systems)
    lo, hi = DET_LIMITS
    fig = _new_figure(5.5, 5.0)
    ax = fig.add_subplot()
    for name, s in systems.items():
        far, frr, _ = det_curve(s.scores, s.labels)
        eer, _ = eer_threshold(s.scores, s.labels)
        x, y = norm.ppf(np.clip(far, lo, hi)), norm.ppf(np.clip(frr, lo, hi))
        (line,) = ax.plot(x, y, label=f"{name} (EER {100 * eer:.2f}%)")
        e = norm.ppf(np.clip(eer, lo, hi))
        ax.plot([e], [e], marker="o", color=line.get_color())
    ticks = norm.ppf(DET_TICKS)
    labels = [f"{100 * t:g}" for t in DET_TICKS]
    ax.set_xticks(ticks, labels, fontsize="x-small")
    ax.set_yticks(ticks, labels, fontsize="x-small")
    ax.set_xlim(norm.ppf(lo), norm.ppf(hi))
    ax.set_ylim(norm.ppf(lo), norm.ppf(hi))
    ax.plot(
        [norm.ppf(lo), norm.ppf(hi)],
        [norm.ppf(lo), norm.ppf(hi)],
        color="grey",
        linestyle=":",
        linewidth=0.8,
    )
    ax.set_xlabel("false accept rate (%)")
    ax.set_ylabel("false reject rate (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")
    return _save(fig, path)


def plot_score_histogram(
    scores: ScoreSet, threshold: float, path: Path, *, bins: int = 30, title: str = "Scores"
) -> Path:
    """Histograms of genuine and spoof scores on shared bins, with the decision threshold."""
    if bins < 1:
        raise PlotError(f"bins must be >= 1, got {bins}")
    s, y = scores.scores, scores.labels
    lo, hi = (0.0, 1.0) if s.min() >= 0.0 and s.max() <= 1.0 else (float(s.min()), float(s.max()))
    edges = np.linspace(min(lo, threshold), max(hi, threshold), bins + 1)
    fig = _new_figure(6.0, 4.0)
    ax = fig.add_subplot()
    ax.hist(
        s[y == GENUINE_CLASS],
        bins=edges,
        alpha=0.6,
        color="tab:green",
        label=f"{GENUINE} ({int(np.sum(y == GENUINE_CLASS))})",
    )
    ax.hist(
        s[y == SPOOF_CLASS],
        bins=edges,
        alpha=0.6,
        color="tab:red",
        label=f"{SPOOF} ({int(np.sum(y == SPOOF_CLASS))})",
    )
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set_xlabel("score (probability of genuine)")
    ax.set_ylabel("count")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return _save(fig, path)


def _thumbnail_strip(frames: np.ndarray) -> np.ndarray:
    """uint8 [T, H, W] grey or [T, H, W, 3] BGR -> RGB strip [THUMB_HEIGHT, T * w, 3]."""
    frames = np.asarray(frames)
    if (
        frames.dtype != np.uint8
        or frames.ndim not in (3, 4)
        or (frames.ndim == 4 and frames.shape[-1] != 3)
    ):
        raise PlotError(
            f"thumbnails must be uint8 [T, H, W] or [T, H, W, 3], got {frames.dtype} {frames.shape}"
        )
    h, w = frames.shape[1:3]
    width = max(1, round(w * THUMB_HEIGHT / h))
    thumbs = []
    for frame in frames:
        rgb = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB if frame.ndim == 2 else cv2.COLOR_BGR2RGB)
        thumbs.append(cv2.resize(rgb, (width, THUMB_HEIGHT), interpolation=cv2.INTER_AREA))
    return np.concatenate(thumbs, axis=1)


def _attention_panel(fig: Figure, cell, weights: np.ndarray, title: str, thumbs) -> None:
    """One clip in one grid cell: an optional thumbnail strip above the weights [T]."""
    t = weights.size
    if thumbs is not None and len(thumbs) != t:
        raise PlotError(f"{title}: {t} weights but {len(thumbs)} thumbnails")
    if thumbs is None:
        ax = fig.add_subplot(cell)
    else:
        strip_cell, bars_cell = cell.subgridspec(2, 1, height_ratios=[1, 2], hspace=0.0)
        ax = fig.add_subplot(bars_cell)
    ax.bar(np.arange(t), weights, width=0.8, color="tab:blue")
    ax.axhline(1.0 / t, color="grey", linestyle=":", linewidth=0.8)  # uniform attention
    ax.set_xlim(-0.5, t - 0.5)
    ax.set_xlabel("frame")
    ax.set_ylabel("attention")
    top = ax
    if thumbs is not None:
        top = fig.add_subplot(strip_cell, sharex=ax)
        # one thumbnail per frame index, centred on that frame's bar
        top.imshow(_thumbnail_strip(thumbs), extent=(-0.5, t - 0.5, 0, 1), aspect="auto")
        top.set_yticks([])
        top.tick_params(bottom=False, labelbottom=False)
    top.set_title(title, fontsize="small")


def plot_attention(
    weights: Sequence[np.ndarray],
    path: Path,
    *,
    titles: Sequence[str] | None = None,
    thumbnails: Sequence[np.ndarray] | None = None,
) -> Path:
    """Attention weight over time, one panel per clip (frames on x, weight on y), each with
    an optional strip of its frames above it. ``weights[i]`` is [T_i]; ``thumbnails[i]``
    is uint8 [T_i, H, W] or [T_i, H, W, 3] BGR."""
    n = len(weights)
    if n == 0:
        raise PlotError("no attention weights to plot")
    if titles is not None and len(titles) != n:
        raise PlotError(f"{n} clips but {len(titles)} titles")
    if thumbnails is not None and len(thumbnails) != n:
        raise PlotError(f"{n} clips but {len(thumbnails)} thumbnail sets")
    fig = _new_figure(8.0, (3.4 if thumbnails is not None else 2.4) * n)
    grid = fig.add_gridspec(n, 1)  # one cell per clip
    for i, w in enumerate(weights):
        w = np.asarray(w, dtype=np.float64).reshape(-1)
        if w.size == 0 or not np.all(np.isfinite(w)):
            raise PlotError(f"clip {i}: attention weights must be non-empty and finite")
        title = titles[i] if titles is not None else f"clip {i}"
        _attention_panel(fig, grid[i], w, title, thumbnails[i] if thumbnails is not None else None)
    return _save(fig, path)
