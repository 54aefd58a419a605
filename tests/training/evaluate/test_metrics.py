"""Metrics against values worked out by hand on small score sets."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluate.metrics import (
    MetricsError,
    ScoreSet,
    accuracy,
    acer,
    apcer,
    apcer_per_attack,
    bpcer,
    det_curve,
    eer_threshold,
    evaluate,
    far_frr,
    hter_at_threshold,
    operating_points,
    roc_auc,
    roc_curve,
)

# 4 genuine and 6 spoof scores (no ties).
GENUINE = [0.9, 0.8, 0.6, 0.3]
SPOOF = [0.7, 0.5, 0.4, 0.2, 0.1, 0.05]
SCORES = GENUINE + SPOOF
LABELS = [1] * 4 + [0] * 6


def test_eer_between_candidate_thresholds_is_interpolated():
    # threshold  FAR (spoof >= t)  FRR (genuine < t)  FAR-FRR
    #   0.5          2/6              1/4              +1/12
    #   0.6          1/6              1/4              -1/12
    # crossing at w = (1/12) / (1/12 + 1/12) = 1/2: EER = 2/6 + 1/2 (1/6 - 2/6) = 1/4;
    # threshold = midpoint of the two scores = (0.5 + 0.6) / 2 = 0.55
    eer, threshold = eer_threshold(SCORES, LABELS)
    assert eer == pytest.approx(0.25)
    assert threshold == pytest.approx(0.55)


def test_eer_with_tied_genuine_and_spoof_scores():
    # genuine {0.9, 0.5, 0.3}, spoof {0.7, 0.5, 0.2, 0.1}; 0.5 is shared.
    # t=0.5: FAR 2/4 (0.7, 0.5), FRR 1/3 (0.3)        d = +1/6
    # t=0.7: FAR 1/4 (0.7),      FRR 2/3 (0.3, 0.5)   d = -5/12 (both rates moved)
    # w = (1/6) / (1/6 + 5/12) = 2/7
    # EER = 1/2 + 2/7 (1/4 - 1/2) = 3/7  (= 1/3 + 2/7 (2/3 - 1/3) = 3/7), threshold 0.6
    scores = [0.9, 0.5, 0.3, 0.7, 0.5, 0.2, 0.1]
    labels = [1, 1, 1, 0, 0, 0, 0]
    eer, threshold = eer_threshold(scores, labels)
    assert eer == pytest.approx(3 / 7)
    assert threshold == pytest.approx(0.6)
    # a tie at the threshold is accepted: the 0.5 spoof is a false accept, the 0.5
    # genuine is not a false reject
    assert far_frr(scores, labels, 0.5) == pytest.approx((2 / 4, 1 / 3))


def test_eer_exact_crossing_and_unequal_steps():
    # genuine {0.9, 0.7, 0.4}, spoof {0.8, 0.3, 0.2, 0.1}
    # t=0.4: FAR 1/4, FRR 0 (d = +1/4); t=0.7: FAR 1/4, FRR 1/3 (d = -1/12)
    # w = (1/4) / (1/4 + 1/12) = 3/4; EER = 1/4 + 0 = 0 + 3/4 * 1/3 = 1/4; thr (0.4+0.7)/2
    eer, threshold = eer_threshold([0.9, 0.7, 0.4, 0.8, 0.3, 0.2, 0.1], [1, 1, 1, 0, 0, 0, 0])
    assert eer == pytest.approx(0.25)
    assert threshold == pytest.approx(0.55)


def test_perfect_separation_gives_zero_eer_and_a_threshold_in_the_gap():
    # every t in (0.2, 0.8] has FAR = FRR = 0; the midpoint of the gap is 0.5
    eer, threshold = eer_threshold([0.8, 0.9, 0.1, 0.2], [1, 1, 0, 0])
    assert eer == 0.0
    assert threshold == pytest.approx(0.5)
    assert hter_at_threshold([0.8, 0.9, 0.1, 0.2], [1, 1, 0, 0], threshold) == 0.0
    assert roc_auc([0.8, 0.9, 0.1, 0.2], [1, 1, 0, 0]) == 1.0


def test_fully_inverted_scores():
    # genuine {0.1, 0.2} below spoof {0.8, 0.9}: at t in (0.2, 0.8] both spoofs are
    # accepted and both genuine rejected, FAR = FRR = 1
    scores, labels = [0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]
    eer, threshold = eer_threshold(scores, labels)
    assert eer == 1.0
    assert threshold == pytest.approx(0.5)
    assert roc_auc(scores, labels) == 0.0
    assert accuracy(scores, labels, threshold) == 0.0


def test_all_scores_tied():
    # only two operating points: accept-all (1, 0) and reject-all (0, 1); the segment
    # meets FAR = FRR at 1/2; the threshold is the reject-all point just above 0.5
    eer, threshold = eer_threshold([0.5] * 4, [1, 1, 0, 0])
    assert eer == pytest.approx(0.5)
    assert threshold > 0.5
    assert far_frr([0.5] * 4, [1, 1, 0, 0], threshold) == (0.0, 1.0)
    assert roc_auc([0.5] * 4, [1, 1, 0, 0]) == 0.5


def test_far_frr_hter_and_accuracy_at_a_given_threshold():
    # t = 0.45: spoofs >= t: 0.7, 0.5 -> FAR 2/6; genuine < t: 0.3 -> FRR 1/4
    # HTER = (1/3 + 1/4) / 2 = 7/24; correct = 3 genuine + 4 spoof = 7 of 10
    far, frr = far_frr(SCORES, LABELS, 0.45)
    assert (far, frr) == pytest.approx((1 / 3, 1 / 4))
    assert hter_at_threshold(SCORES, LABELS, 0.45) == pytest.approx(7 / 24)
    assert accuracy(SCORES, LABELS, 0.45) == pytest.approx(0.7)


def test_auc_counts_correctly_ordered_pairs_with_ties_at_half():
    # no ties: genuine 0.9 beats 6 spoofs, 0.8 beats 6, 0.6 beats 5, 0.3 beats 3 -> 20/24
    assert roc_auc(SCORES, LABELS) == pytest.approx(20 / 24)
    # genuine {0.5, 0.9}, spoof {0.5, 0.1}: pairs (0.5,0.5) = 1/2, (0.5,0.1) = 1,
    # (0.9,0.5) = 1, (0.9,0.1) = 1 -> 3.5 / 4
    assert roc_auc([0.5, 0.9, 0.5, 0.1], [1, 1, 0, 0]) == pytest.approx(3.5 / 4)


def test_auc_matches_trapezoid_area_under_roc_points():
    rng = np.random.default_rng(3)
    scores = np.round(rng.random(60), 1)  # many ties
    labels = (rng.random(60) < 0.4).astype(int)
    far, gar, _ = roc_curve(scores, labels)
    assert np.trapezoid(gar, far) == pytest.approx(roc_auc(scores, labels))


def test_roc_and_det_points_run_from_reject_all_to_accept_all():
    far, gar, thr = roc_curve(SCORES, LABELS)
    far_d, frr, thr_d = det_curve(SCORES, LABELS)
    assert (far[0], gar[0]) == (0.0, 0.0) and (far[-1], gar[-1]) == (1.0, 1.0)
    assert np.all(np.diff(thr) < 0) and np.all(np.diff(far) >= 0) and np.all(np.diff(gar) >= 0)
    np.testing.assert_array_equal(far_d, far)
    np.testing.assert_allclose(frr, 1.0 - gar)
    np.testing.assert_array_equal(thr_d, thr)
    # each point's rates are what far_frr measures at its threshold
    for t, a, r in zip(thr_d, far_d, frr, strict=True):
        assert far_frr(SCORES, LABELS, t) == pytest.approx((a, r))


def test_far_minus_frr_is_strictly_decreasing_over_operating_points():
    _, far, frr = operating_points([0.9, 0.5, 0.3, 0.7, 0.5, 0.2, 0.1], [1, 1, 1, 0, 0, 0, 0])
    assert np.all(np.diff(far - frr) < 0)


def test_apcer_per_species_bpcer_and_acer():
    # genuine {0.9, 0.6, 0.4, 0.2}; print {0.7, 0.3}; replay {0.8, 0.55, 0.1}; threshold 0.5
    # APCER print = 1/2 (0.7), replay = 2/3 (0.8, 0.55) -> max 2/3
    # BPCER = 2/4 (0.4, 0.2); ACER = (2/3 + 1/2) / 2 = 7/12
    scores = [0.9, 0.6, 0.4, 0.2, 0.7, 0.3, 0.8, 0.55, 0.1]
    labels = [1, 1, 1, 1, 0, 0, 0, 0, 0]
    attacks = [None, None, "", None, "print", "print", "replay", "replay", "replay"]
    assert apcer_per_attack(scores, labels, attacks, 0.5) == pytest.approx(
        {"print": 1 / 2, "replay": 2 / 3}
    )
    assert apcer(scores, labels, attacks, 0.5) == pytest.approx(2 / 3)
    assert bpcer(scores, labels, 0.5) == pytest.approx(0.5)
    assert acer(scores, labels, attacks, 0.5) == pytest.approx(7 / 12)
    # without species names all spoofs form one species: 3/5 accepted = aggregate FAR
    assert apcer_per_attack(scores, labels, None, 0.5) == pytest.approx({"spoof": 3 / 5})
    assert far_frr(scores, labels, 0.5)[0] == pytest.approx(3 / 5)


def test_dev_threshold_then_test_hter():
    # dev = the 4+6 set above: EER 1/4 at threshold 0.55.
    dev = ScoreSet(SCORES, LABELS)
    # test at t = 0.55: genuine {0.95, 0.56, 0.5} -> 0.5 rejected, FRR 1/3;
    # spoof print {0.6, 0.2}, replay {0.3, 0.1} -> 0.6 accepted, FAR 1/4, APCER print 1/2
    # HTER = (1/4 + 1/3) / 2 = 7/24; ACC = 5/7; BPCER 1/3; ACER = (1/2 + 1/3) / 2 = 5/12
    # test AUC: 0.95 > 4, 0.56 > 3, 0.5 > 3 -> 10/12
    test = ScoreSet(
        scores=[0.95, 0.56, 0.5, 0.6, 0.2, 0.3, 0.1],
        labels=[1, 1, 1, 0, 0, 0, 0],
        attacks=[None, None, None, "print", "print", "replay", "replay"],
        ids=["g1", "g2", "g3", "p1", "p2", "r1", "r2"],
    )
    report = evaluate(dev, test)
    assert report.threshold == pytest.approx(0.55)
    assert report.dev_eer == pytest.approx(0.25)
    assert report.far == pytest.approx(1 / 4) and report.frr == pytest.approx(1 / 3)
    assert report.hter == pytest.approx(7 / 24)
    assert report.acc == pytest.approx(5 / 7)
    assert report.auc == pytest.approx(10 / 12)
    assert report.apcer_per_attack == pytest.approx({"print": 1 / 2, "replay": 0.0})
    assert report.apcer == pytest.approx(1 / 2)
    assert report.bpcer == pytest.approx(1 / 3)
    assert report.acer == pytest.approx(5 / 12)
    assert (report.n_genuine, report.n_spoof) == (3, 4)
    assert report.false_accepts == ["p1"] and report.false_rejects == ["g3"]
    # test EER: t=0.5 -> FAR 1/4, FRR 0 (d 1/4); t=0.56 -> FAR 1/4, FRR 1/3 (d -1/12)
    # w = 3/4 -> EER 1/4
    assert report.eer == pytest.approx(0.25)
    d = report.to_dict()
    assert d["hter"] == report.hter and d["false_accepts"] == ["p1"]


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        ([], [], "empty"),
        ([0.1, 0.2], [1], "length mismatch"),
        ([0.1, float("nan")], [1, 0], "NaN"),
        ([0.1, float("inf")], [1, 0], "NaN or infinite"),
        ([0.1, 0.2], [1, 1], "only genuine"),
        ([0.1, 0.2], [0, 0], "only spoof"),
        ([0.1, 0.2], [1, 2], "labels must be"),
    ],
)
def test_bad_input_raises_clear_errors(scores, labels, message):
    with pytest.raises(MetricsError, match=message):
        eer_threshold(scores, labels)


def test_error_paths_of_threshold_metrics_and_score_sets():
    with pytest.raises(MetricsError, match="threshold is NaN"):
        far_frr(SCORES, LABELS, float("nan"))
    with pytest.raises(MetricsError, match="attack names"):
        apcer_per_attack(SCORES, LABELS, ["print"] * 3, 0.5)
    with pytest.raises(MetricsError, match="only genuine"):
        apcer_per_attack([0.3, 0.9], [1, 1], None, 0.5)
    with pytest.raises(MetricsError, match="only spoof"):
        bpcer([0.3, 0.9], [0, 0], 0.5)
    with pytest.raises(MetricsError, match="ids"):
        ScoreSet(SCORES, LABELS, ids=["a"])
    with pytest.raises(MetricsError, match="only genuine"):
        ScoreSet([0.2, 0.3], [1, 1])
    # accuracy alone accepts a single class
    assert accuracy([0.3, 0.9], [1, 1], 0.5) == 0.5
