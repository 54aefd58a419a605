"""Presentation-attack detection metrics: EER, HTER, ACC, AUC, ROC/DET, APCER/BPCER/ACER.

Conventions used by every function here:

- ``scores`` are probabilities of GENUINE (bona fide): higher = more genuine. Any finite
  real score works; only the order and the threshold matter.
- ``labels``: 1 = genuine / bona fide, 0 = spoof / attack.
- A presentation is accepted as genuine when ``score >= threshold``. A spoof scoring
  exactly the threshold is therefore a false accept; a genuine one is accepted.
- FAR (= aggregate APCER) is the share of spoofs accepted, FRR (= BPCER) the share of
  genuine presentations rejected; HTER = (FAR + FRR) / 2 (the paper's eq. 14).

The same functions serve per-clip and per-window evaluation: the caller passes whichever
score set it has. Numpy only, so the service and the benchmarks can use it without torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model.labels import GENUINE, GENUINE_CLASS, SPOOF, SPOOF_CLASS

# Attack-species name used for spoofs whose species is not recorded.
UNSPECIFIED_ATTACK = SPOOF


class MetricsError(ValueError):
    """Scores and labels that cannot be evaluated (empty, one class, NaN, mismatched...)."""


def _check(scores: Any, labels: Any, *, need_both: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert to (scores float64 [N], labels int64 [N])."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1)
    if s.size == 0:
        raise MetricsError("no scores to evaluate (empty input)")
    if s.size != y.size:
        raise MetricsError(f"length mismatch: {s.size} scores but {y.size} labels")
    if not np.all(np.isfinite(s)):
        bad = int(np.count_nonzero(~np.isfinite(s)))
        raise MetricsError(f"{bad} score(s) are NaN or infinite; every score must be finite")
    if not np.all(np.isin(y, (GENUINE_CLASS, SPOOF_CLASS))):
        raise MetricsError(
            f"labels must be 1 (genuine) or 0 (spoof), got {sorted(set(y.tolist()))}"
        )
    y = y.astype(np.int64)
    if need_both and (np.all(y == GENUINE_CLASS) or np.all(y == SPOOF_CLASS)):
        only = GENUINE if y[0] == GENUINE_CLASS else SPOOF
        raise MetricsError(f"need both genuine and spoof samples, got only {only} ({y.size})")
    return s, y


def _check_threshold(threshold: float) -> float:
    t = float(threshold)
    if np.isnan(t):
        raise MetricsError("threshold is NaN")
    return t


def far_frr(scores: Any, labels: Any, threshold: float) -> tuple[float, float]:
    """(FAR, FRR) at ``threshold``: spoofs with score >= t, genuine with score < t."""
    s, y = _check(scores, labels)
    t = _check_threshold(threshold)
    far = float(np.mean(s[y == SPOOF_CLASS] >= t))
    frr = float(np.mean(s[y == GENUINE_CLASS] < t))
    return far, frr


def hter_at_threshold(scores: Any, labels: Any, threshold: float) -> float:
    """Half total error rate, (FAR + FRR) / 2, at a fixed threshold (paper eq. 14)."""
    far, frr = far_frr(scores, labels, threshold)
    return (far + frr) / 2.0


def accuracy(scores: Any, labels: Any, threshold: float) -> float:
    """Share of presentations classified correctly (one class alone is allowed)."""
    s, y = _check(scores, labels, need_both=False)
    t = _check_threshold(threshold)
    predicted = (s >= t).astype(np.int64)
    return float(np.mean(predicted == y))


def operating_points(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every distinct operating point, by ascending threshold.

    Returns (thresholds [K+1], far [K+1], frr [K+1]) where thresholds are the K distinct
    scores in ascending order followed by the smallest float above the highest score
    (the reject-all point). Any threshold in (c[i-1], c[i]] gives the rates at c[i]; the
    first point accepts everything (FAR 1, FRR 0), the last rejects everything (FAR 0,
    FRR 1). FAR is non-increasing, FRR non-decreasing, and FAR - FRR strictly decreasing
    (each step passes at least one sample).
    """
    s, y = _check(scores, labels)
    candidates = np.unique(s)  # ascending, distinct
    thresholds = np.append(candidates, np.nextafter(candidates[-1], np.inf))
    spoof = np.sort(s[y == SPOOF_CLASS])
    genuine = np.sort(s[y == GENUINE_CLASS])
    # spoofs with score >= t: those not strictly below t
    far = (spoof.size - np.searchsorted(spoof, thresholds, side="left")) / spoof.size
    frr = np.searchsorted(genuine, thresholds, side="left") / genuine.size
    return thresholds, far, frr


def eer_threshold(scores: Any, labels: Any) -> tuple[float, float]:
    """Equal error rate and the threshold at the equal-error point: (EER, threshold).

    FAR and FRR are step functions of the threshold, so they rarely meet exactly. Let
    d = FAR - FRR over the operating points (strictly decreasing, from +1 at accept-all
    to -1 at reject-all) and i the first point with d[i] <= 0; the crossing lies between
    points i-1 and i.

    - EER: the straight segment between the two ROC points (FAR, FRR)[i-1] and [i] meets
      the line FAR = FRR at w = d[i-1] / (d[i-1] - d[i]); EER = FAR[i-1] + w (FAR[i] -
      FAR[i-1]) (= the same expression in FRR). An exact crossing (d[i] = 0) gives w = 1
      and EER = FAR[i] = FRR[i]. Tied genuine/spoof scores move both rates in one step
      and are handled by the same formula.
    - Threshold: the midpoint between the two distinct scores c[i-1] and c[i]. Every
      threshold in (c[i-1], c[i]] has the same dev-set rates (those of point i); the
      midpoint keeps the widest margin to both neighbouring scores, so e.g. perfectly
      separated classes get a threshold in the middle of the gap rather than on the
      lowest genuine score. When the crossing is at the reject-all point (all scores
      tied), the threshold is that point (just above the highest score).
    """
    thresholds, far, frr = operating_points(scores, labels)
    d = far - frr
    i = int(np.argmax(d <= 0.0))  # exists: d[-1] = -1; i >= 1 since d[0] = +1
    w = d[i - 1] / (d[i - 1] - d[i])
    eer = float(far[i - 1] + w * (far[i] - far[i - 1]))
    if i == thresholds.size - 1:
        threshold = float(thresholds[i])
    else:
        threshold = float((thresholds[i - 1] + thresholds[i]) / 2.0)
    return eer, threshold


def roc_auc(scores: Any, labels: Any) -> float:
    """Area under the ROC: the share of (genuine, spoof) pairs ordered correctly, ties 1/2."""
    s, y = _check(scores, labels)
    spoof = np.sort(s[y == SPOOF_CLASS])
    genuine = s[y == GENUINE_CLASS]
    below = np.searchsorted(spoof, genuine, side="left")  # spoofs strictly below each genuine
    tied = np.searchsorted(spoof, genuine, side="right") - below
    return float((below.sum() + 0.5 * tied.sum()) / (genuine.size * spoof.size))


def roc_curve(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC points (far, genuine_accept_rate, thresholds), from reject-all (0, 0) to
    accept-all (1, 1), thresholds descending."""
    thresholds, far, frr = operating_points(scores, labels)
    return far[::-1].copy(), (1.0 - frr)[::-1].copy(), thresholds[::-1].copy()


def det_curve(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DET points (far, frr, thresholds) in the same order as ``roc_curve``; plot them on
    normal-deviate axes (see training.evaluate.plots)."""
    thresholds, far, frr = operating_points(scores, labels)
    return far[::-1].copy(), frr[::-1].copy(), thresholds[::-1].copy()


def _attack_names(attacks: Sequence[str | None] | None, n: int) -> np.ndarray:
    if attacks is None:
        return np.full(n, UNSPECIFIED_ATTACK, dtype=object)
    names = np.array([a if a else UNSPECIFIED_ATTACK for a in attacks], dtype=object)
    if names.size != n:
        raise MetricsError(f"length mismatch: {n} scores but {names.size} attack names")
    return names


def apcer_per_attack(
    scores: Any, labels: Any, attacks: Sequence[str | None] | None, threshold: float
) -> dict[str, float]:
    """ISO/IEC 30107-3 APCER per attack (PAI) species: the share of attack presentations
    of each species classified as bona fide (score >= threshold). Spoofs with no species
    name count as species ``"spoof"``; genuine samples' names are ignored. Sorted by name."""
    s, y = _check(scores, labels, need_both=False)
    t = _check_threshold(threshold)
    names = _attack_names(attacks, s.size)
    is_spoof = y == SPOOF_CLASS
    if not np.any(is_spoof):
        raise MetricsError("APCER needs attack presentations, got only genuine samples")
    out = {}
    for species in sorted(set(names[is_spoof].tolist())):
        members = is_spoof & (names == species)
        out[species] = float(np.mean(s[members] >= t))
    return out


def apcer(
    scores: Any, labels: Any, attacks: Sequence[str | None] | None, threshold: float
) -> float:
    """APCER of the worst attack species (ISO/IEC 30107-3 APCER_max)."""
    return max(apcer_per_attack(scores, labels, attacks, threshold).values())


def bpcer(scores: Any, labels: Any, threshold: float) -> float:
    """Share of bona fide presentations classified as attacks (score < threshold)."""
    s, y = _check(scores, labels, need_both=False)
    t = _check_threshold(threshold)
    genuine = s[y == GENUINE_CLASS]
    if genuine.size == 0:
        raise MetricsError("BPCER needs bona fide presentations, got only spoof samples")
    return float(np.mean(genuine < t))


def acer(scores: Any, labels: Any, attacks: Sequence[str | None] | None, threshold: float) -> float:
    """Average classification error rate: (APCER_max + BPCER) / 2."""
    return (apcer(scores, labels, attacks, threshold) + bpcer(scores, labels, threshold)) / 2.0


@dataclass
class ScoreSet:
    """Scores of one evaluation split, per clip or per window (the caller decides)."""

    scores: np.ndarray  # [N] probability of genuine
    labels: np.ndarray  # [N] 1 genuine, 0 spoof
    attacks: list[str | None] | None = None  # [N] attack species; None/"" for genuine
    ids: list[str] | None = None  # [N] clip or window ids, for listing the errors

    def __post_init__(self) -> None:
        self.scores, self.labels = _check(self.scores, self.labels)
        n = self.scores.size
        if self.attacks is not None:
            self.attacks = list(self.attacks)
            if len(self.attacks) != n:
                raise MetricsError(f"length mismatch: {n} scores but {len(self.attacks)} attacks")
        if self.ids is not None:
            self.ids = [str(i) for i in self.ids]
            if len(self.ids) != n:
                raise MetricsError(f"length mismatch: {n} scores but {len(self.ids)} ids")


@dataclass
class EvaluationReport:
    """Test-set metrics at the threshold fixed on the dev set (rates are fractions)."""

    threshold: float  # from the dev set's EER point
    dev_eer: float
    hter: float
    far: float
    frr: float
    acc: float
    eer: float  # the test set's own EER (threshold-free)
    auc: float
    apcer_per_attack: dict[str, float]
    apcer: float  # worst species
    bpcer: float
    acer: float
    n_genuine: int
    n_spoof: int
    false_accepts: list[str] = field(default_factory=list)  # ids of accepted spoofs
    false_rejects: list[str] = field(default_factory=list)  # ids of rejected genuine

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (for manifests and report tables)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _misclassified(scores: ScoreSet, threshold: float) -> tuple[list[str], list[str]]:
    """Ids of (accepted spoofs, rejected genuine); empty when the set carries no ids."""
    if scores.ids is None:
        return [], []
    accepted = scores.scores >= threshold
    ids = np.array(scores.ids, dtype=object)
    spoof = scores.labels == SPOOF_CLASS
    return ids[accepted & spoof].tolist(), ids[~accepted & ~spoof].tolist()


def report_at_threshold(
    test: ScoreSet, threshold: float, dev_eer: float | None = None
) -> EvaluationReport:
    """Every figure of the test set at a given threshold (``dev_eer`` is only recorded;
    None where the threshold was not found on a dev set here, e.g. a manifest's)."""
    s, y = test.scores, test.labels
    far, frr = far_frr(s, y, threshold)
    per_attack = apcer_per_attack(s, y, test.attacks, threshold)
    apcer_max = max(per_attack.values())
    false_accepts, false_rejects = _misclassified(test, threshold)
    return EvaluationReport(
        threshold=float(threshold),
        dev_eer=dev_eer,  # type: ignore[arg-type]
        hter=(far + frr) / 2.0,
        far=far,
        frr=frr,
        acc=accuracy(s, y, threshold),
        eer=eer_threshold(s, y)[0],
        auc=roc_auc(s, y),
        apcer_per_attack=per_attack,
        apcer=apcer_max,
        bpcer=frr,
        acer=(apcer_max + frr) / 2.0,
        n_genuine=int(np.sum(y == GENUINE_CLASS)),
        n_spoof=int(np.sum(y == SPOOF_CLASS)),
        false_accepts=false_accepts,
        false_rejects=false_rejects,
    )


def evaluate(dev: ScoreSet, test: ScoreSet) -> EvaluationReport:
    """Fix the threshold at the dev set's EER point, then measure the test set with it."""
    dev_eer, threshold = eer_threshold(dev.scores, dev.labels)
    return report_at_threshold(test, threshold, dev_eer)
