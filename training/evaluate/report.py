"""Markdown result tables in the shapes of the paper's Table 1 (intra-data-set), Table 2
(cross-data-set) and an ablation table, from plain nested dicts of metric values.

Values are fractions in [0, 1] as ``training.evaluate.metrics`` returns them (e.g. the dicts of
``EvaluationReport.to_dict()``); tables show them as the paper does: percent with two
decimals (0.0018 -> ``0.18``). A missing value prints as ``-``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

# (key in a result dict, row label)
INTRA_METRICS = (("hter", "HTER(%)"), ("acc", "ACC(%)"))
ABLATION_METRICS = (
    ("hter", "HTER(%)"),
    ("acc", "ACC(%)"),
    ("eer", "EER(%)"),
    ("auc", "AUC(%)"),
    ("acer", "ACER(%)"),
)
# Column order of the ablation: baselines, then the network with magnification (M),
# attention (A) or both (AM). Methods not listed here follow in the order they appear.
ABLATION_METHODS = (
    "LBP",
    "LBP-TOP",
    "CNN",
    "CNN-LSTM",
    "CNN-LSTM+M",
    "CNN-LSTM+A",
    "CNN-LSTM+AM",
)
MISSING = "-"

Metrics = Mapping[str, float]  # metric key -> fraction


class ReportError(ValueError):
    """A result value that cannot be shown as a percentage."""


def format_percent(value: float | None) -> str:
    """A fraction in [0, 1] as percent with two decimals; None -> ``-``."""
    if value is None:
        return MISSING
    v = float(value)
    if math.isnan(v) or not 0.0 <= v <= 1.0:
        raise ReportError(f"{value!r} is not a fraction in [0, 1] (pass rates, not percents)")
    return f"{100.0 * v:.2f}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _table(header: Sequence[str], n_label_columns: int, rows: list[list[str]]) -> str:
    """Label columns left-aligned, number columns right-aligned."""
    rule = [":---"] * n_label_columns + ["---:"] * (len(header) - n_label_columns)
    lines = [_row(header), "| " + " | ".join(rule) + " |", *(_row(r) for r in rows)]
    return "\n".join(lines) + "\n"


def _method_order(found: Iterable[str], preferred: Sequence[str] = ()) -> list[str]:
    """Preferred names that occur, then the others in first-seen order."""
    seen = list(dict.fromkeys(found))
    return [m for m in preferred if m in seen] + [m for m in seen if m not in preferred]


def _values(per_method: Mapping[str, Metrics], methods: Sequence[str], key: str) -> list[str]:
    return [format_percent(per_method.get(m, {}).get(key)) for m in methods]


def intra_table(
    results: Mapping[str, Mapping[str, Metrics]], methods: Sequence[str] | None = None
) -> str:
    """Table 1: ``results[data set or protocol][method] = {"hter": .., "acc": ..}``.
    Two rows per data set (HTER, ACC), one column per method."""
    methods = list(methods) if methods else _method_order(m for r in results.values() for m in r)
    rows = []
    for dataset, per_method in results.items():
        for j, (key, label) in enumerate(INTRA_METRICS):
            rows.append([dataset if j == 0 else "", label, *_values(per_method, methods, key)])
    return _table(["Data set", "Metric", *methods], 2, rows)


def cross_table(
    results: Mapping[str, Mapping[str, Mapping[str, Metrics]]],
    methods: Sequence[str] | None = None,
) -> str:
    """Table 2: ``results[train set][test set][method] = {"hter": .., "acc": ..}``.
    Two rows per train -> test pair, one column per method."""
    if methods is None:
        methods = _method_order(m for t in results.values() for r in t.values() for m in r)
    rows = []
    for train, per_test in results.items():
        for test, per_method in per_test.items():
            for j, (key, label) in enumerate(INTRA_METRICS):
                first = j == 0
                rows.append(
                    [
                        train if first else "",
                        test if first else "",
                        label,
                        *_values(per_method, list(methods), key),
                    ]
                )
    return _table(["Train", "Test", "Metric", *methods], 3, rows)


def ablation_table(
    results: Mapping[str, Metrics],
    methods: Sequence[str] | None = None,
    metrics: Sequence[tuple[str, str]] = ABLATION_METRICS,
) -> str:
    """Ablation: ``results[method] = {"hter", "acc", "eer", "auc", "acer": ..}``; one row per
    metric, one column per method (LBP, LBP-TOP, CNN, CNN-LSTM, +M, +A, +AM order)."""
    methods = list(methods) if methods else _method_order(results, ABLATION_METHODS)
    rows = [[label, *_values(results, methods, key)] for key, label in metrics]
    return _table(["Metric", *methods], 1, rows)
