"""Report tables (exact markdown) and evaluation figures (real PNG files read back with cv2)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from training.evaluate.metrics import ScoreSet
from training.evaluate.plots import (
    DPI,
    PlotError,
    plot_attention,
    plot_det,
    plot_roc,
    plot_score_histogram,
)
from training.evaluate.report import (
    ReportError,
    ablation_table,
    cross_table,
    format_percent,
    intra_table,
)


def test_format_percent_is_two_decimal_percent():
    assert format_percent(0.0018) == "0.18"
    assert format_percent(1.0) == "100.00"
    assert format_percent(0.9) == "90.00"
    assert format_percent(0.12345) == "12.35"
    assert format_percent(None) == "-"
    with pytest.raises(ReportError, match="fraction"):
        format_percent(99.8)
    with pytest.raises(ReportError, match="fraction"):
        format_percent(float("nan"))


def test_intra_table_markdown():
    results = {
        "Replay-attack (controlled)": {
            "LBP": {"hter": 0.0018, "acc": 0.998},
            "CNN-LSTM": {"hter": 0.0, "acc": 1.0},
        },
        "MSU-MFSD": {"LBP": {"hter": 0.1163, "acc": 0.8837}},
    }
    assert intra_table(results) == (
        "| Data set | Metric | LBP | CNN-LSTM |\n"
        "| :--- | :--- | ---: | ---: |\n"
        "| Replay-attack (controlled) | HTER(%) | 0.18 | 0.00 |\n"
        "|  | ACC(%) | 99.80 | 100.00 |\n"
        "| MSU-MFSD | HTER(%) | 11.63 | - |\n"
        "|  | ACC(%) | 88.37 | - |\n"
    )


def test_cross_table_markdown_with_given_method_order():
    results = {
        "Replay-attack": {
            "MSU-MFSD": {
                "LBP": {"hter": 0.3979, "acc": 0.6027},
                "CNN-LSTM+AM": {"hter": 0.2572, "acc": 0.7865},
            }
        },
        "MSU|MFSD": {"Replay-attack": {"CNN-LSTM+AM": {"hter": 0.1237, "acc": 0.8232}}},
    }
    assert cross_table(results, methods=["CNN-LSTM+AM", "LBP"]) == (
        "| Train | Test | Metric | CNN-LSTM+AM | LBP |\n"
        "| :--- | :--- | :--- | ---: | ---: |\n"
        "| Replay-attack | MSU-MFSD | HTER(%) | 25.72 | 39.79 |\n"
        "|  |  | ACC(%) | 78.65 | 60.27 |\n"
        "| MSU\\|MFSD | Replay-attack | HTER(%) | 12.37 | - |\n"
        "|  |  | ACC(%) | 82.32 | - |\n"
    )


def test_ablation_table_puts_methods_in_the_canonical_order():
    results = {
        "CNN-LSTM+AM": {"hter": 0.05, "acc": 0.95, "eer": 0.04, "auc": 0.99, "acer": 0.06},
        "LBP": {"hter": 0.2, "acc": 0.8, "eer": 0.19, "auc": 0.85, "acer": 0.25},
        "mine": {"hter": 0.5},
    }
    assert ablation_table(results) == (
        "| Metric | LBP | CNN-LSTM+AM | mine |\n"
        "| :--- | ---: | ---: | ---: |\n"
        "| HTER(%) | 20.00 | 5.00 | 50.00 |\n"
        "| ACC(%) | 80.00 | 95.00 | - |\n"
        "| EER(%) | 19.00 | 4.00 | - |\n"
        "| AUC(%) | 85.00 | 99.00 | - |\n"
        "| ACER(%) | 25.00 | 6.00 | - |\n"
    )


@pytest.fixture(scope="module")
def systems() -> dict[str, ScoreSet]:
    rng = np.random.default_rng(0)
    labels = np.array([1] * 40 + [0] * 60)
    good = np.clip(labels * 0.6 + rng.normal(0.2, 0.15, 100), 0, 1)
    weak = np.clip(labels * 0.2 + rng.normal(0.4, 0.2, 100), 0, 1)
    return {"good": ScoreSet(good, labels), "weak": ScoreSet(weak, labels)}


def _read_png(path) -> np.ndarray:
    assert path.is_file() and path.stat().st_size > 0
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"{path} does not decode as an image"
    assert image.std() > 10  # something was drawn, not a blank canvas
    return image


def test_roc_and_det_pngs(tmp_path, systems):
    roc = _read_png(plot_roc(systems, tmp_path / "roc.png"))
    det = _read_png(plot_det(systems, tmp_path / "sub" / "det.png"))
    assert roc.shape == (5 * DPI, int(5.5 * DPI), 3) and det.shape == roc.shape
    # one curve fewer draws a different picture
    single = _read_png(plot_det({"good": systems["good"]}, tmp_path / "det1.png"))
    assert np.any(single != det)
    with pytest.raises(PlotError, match="no systems"):
        plot_roc({}, tmp_path / "empty.png")


def test_score_histogram_png(tmp_path, systems):
    image = _read_png(plot_score_histogram(systems["good"], 0.5, tmp_path / "hist.png"))
    assert image.shape == (4 * DPI, 6 * DPI, 3)


def test_attention_png_with_and_without_thumbnails(tmp_path):
    weights = [np.array([0.1, 0.2, 0.4, 0.2, 0.1]), np.full(8, 1 / 8)]
    plain = _read_png(plot_attention(weights, tmp_path / "att.png", titles=["live", "print"]))
    rng = np.random.default_rng(1)
    thumbs = [
        rng.integers(0, 256, (5, 24, 24, 3), dtype=np.uint8),  # BGR
        rng.integers(0, 256, (8, 24, 20), dtype=np.uint8),  # grey
    ]
    with_strip = _read_png(plot_attention(weights, tmp_path / "att_t.png", thumbnails=thumbs))
    assert with_strip.shape[0] > plain.shape[0]  # the strips add height
    with pytest.raises(PlotError, match="thumbnails"):
        plot_attention(weights, tmp_path / "bad.png", thumbnails=[thumbs[0], thumbs[0]])
    with pytest.raises(PlotError, match="finite"):
        plot_attention([np.array([0.5, np.nan])], tmp_path / "nan.png")
    with pytest.raises(PlotError, match="titles"):
        plot_attention(weights, tmp_path / "t.png", titles=["one"])
