"""UNICON's uniform selection (dmkeras.division, strategy "unicon") against hand-computed values.

The JSD values are worked out by hand in the comments (natural log, as UNICON's code); scipy's
`jensenshannon(p, q) ** 2` (base e by default: it returns the square root of the divergence) is
an independent oracle.
"""

import math

import numpy as np
import pytest

from dmkeras import division
from dmkeras.errors import DmkerasError

LN2 = math.log(2.0)


def test_jsd_of_tiny_distributions_by_hand():
    p = [[1.0, 0.0], [0.5, 0.5], [1.0, 0.0], [0.25, 0.75]]
    q = [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.25, 0.75]]
    jsd = division.jensen_shannon_divergence(p, q)
    # identical rows: 0. Disjoint one-hots: m = (1/2, 1/2), each KL = ln 2, so JSD = ln 2.
    # (1/2, 1/2) vs (1, 0): m = (3/4, 1/4); KL(p||m) = (ln(2/3) + ln 2) / 2 = 0.143841,
    # KL(q||m) = ln(4/3) = 0.287682, JSD = (0.143841 + 0.287682) / 2 = 0.215762.
    expected = [0.0, 0.5 * (0.5 * math.log(2 / 3) + 0.5 * LN2 + math.log(4 / 3)), LN2, 0.0]
    assert expected[1] == pytest.approx(0.215762, abs=1e-6)
    np.testing.assert_allclose(jsd, expected, atol=1e-9)  # the 1e-10 of their KL moves it by < 1e-9


def test_jsd_matches_scipy_squared_jensenshannon():
    distance = pytest.importorskip("scipy.spatial.distance")
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(5), 20)
    q = rng.dirichlet(np.ones(5), 20)
    oracle = np.array([distance.jensenshannon(a, b) ** 2 for a, b in zip(p, q)])  # base e
    np.testing.assert_allclose(division.jensen_shannon_divergence(p, q), oracle, atol=1e-8)


def test_label_divergence_is_of_the_mean_prediction_and_the_one_hot_label():
    probs1 = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    probs2 = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    # row 0: mean (1, 0), label 0 -> 0; row 1: mean (1/2, 1/2) vs (1, 0) -> 0.215762; row 2: (0, 1) vs label 0 -> ln 2
    jsd = division.label_divergence(probs1, probs2, [0, 0, 0])
    np.testing.assert_allclose(jsd, [0.0, 0.2157615543, LN2], atol=1e-9)


def test_selection_ratio_is_the_share_below_the_mean():
    # mean 0.3; strictly below: 0.1 and 0.2 -> 2 of 4
    assert division.selection_ratio([0.1, 0.2, 0.4, 0.5]) == 0.5
    # a value equal to the mean is not below it (binary-exact values): mean 0.5, below: 0.25 only -> 1/3
    assert division.selection_ratio([0.25, 0.5, 0.75]) == pytest.approx(1 / 3)


def test_selection_ratio_moves_the_threshold_down_above_d_u():
    jsd = [0.1, 0.7, 0.8, 0.9, 1.0]  # mean 0.7 > d_u 0.6: 0.7 - (0.7 - 0.1) / 5 = 0.58 -> 1 of 5 below
    assert division.selection_ratio(jsd, tau=5, d_u=0.6) == pytest.approx(0.2)
    assert division.selection_ratio(jsd, tau=5, d_u=0.7) == pytest.approx(0.2)  # 0.7 is not > 0.7: mean 0.7, below: 0.1
    # tau 1: the threshold becomes the minimum and nothing lies strictly below it
    assert division.selection_ratio(jsd, tau=1, d_u=0.6) == 0.0


def test_uniform_selection_takes_the_same_count_of_every_class():
    labels = np.array([0] * 6 + [1] * 3 + [2] * 3)
    jsd = np.array([0.6, 0.1, 0.5, 0.2, 0.4, 0.3, 0.05, 0.6, 0.02, 0.3, 0.1, 0.2])
    # ratio 0.5 of 12 = 6 selected over 3 classes: int(6 / 3) = 2 per class, the two lowest JSD
    kept = division.uniform_selection(jsd, labels, 0.5, num_classes=3)
    np.testing.assert_array_equal(np.flatnonzero(kept), [1, 3, 6, 8, 10, 11])
    np.testing.assert_array_equal(np.bincount(labels[kept]), [2, 2, 2])


def test_uniform_selection_gives_a_small_class_all_it_has():
    labels = np.array([0] * 8 + [1] * 1)
    jsd = np.linspace(0.0, 0.8, 9)
    # int(1.0 * 9 / 2) = 4 per class: class 0 keeps its 4 lowest, class 1 its only sample
    kept = division.uniform_selection(jsd, labels, 1.0, num_classes=2)
    np.testing.assert_array_equal(np.flatnonzero(kept), [0, 1, 2, 3, 8])


def test_uniform_selection_breaks_ties_by_the_lower_index():
    labels = np.zeros(5, int)
    kept = division.uniform_selection(np.full(5, 0.3), labels, 0.4, num_classes=1)  # int(0.4 * 5) = 2
    np.testing.assert_array_equal(np.flatnonzero(kept), [0, 1])


def test_unicon_clean_weight_zeroes_jsd_below_one_half():
    np.testing.assert_allclose(division.unicon_clean_weight([0.0, 0.49, 0.5, 0.69]), [1.0, 1.0, 0.5, 0.31])


def test_uniform_selection_labels_a_class_s_worse_samples_over_another_s_better_ones():
    labels = np.array([0] * 4 + [1] * 4)
    jsd = np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.6, 0.6, 0.6])
    # mean 0.24375, 5 of 8 below -> SR 5/8, int(5/8 * 8 / 2) = 2 per class: class 0 keeps 0 and 1
    # (not 2 and 3, below the threshold), class 1 keeps 4 and, of its three tied 0.6, the lowest index 5
    ratio = division.selection_ratio(jsd)
    assert ratio == 5 / 8
    kept = division.uniform_selection(jsd, labels, ratio, num_classes=2)
    np.testing.assert_array_equal(np.flatnonzero(kept), [0, 1, 4, 5])


def test_unicon_divide_end_to_end_on_a_hand_case():
    # 2 classes x 4 samples, both nets predict the same; samples 3 and 7 lean to the other class
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    probs = np.array([[0.9, 0.1]] * 3 + [[0.1, 0.9]] + [[0.2, 0.8]] * 3 + [[0.8, 0.2]])
    result = division.unicon_divide(probs, probs, labels, num_classes=2)
    # by hand (nats): (0.9, 0.1) vs label 0: m = (0.95, 0.05), (0.020655 + 0.051293) / 2 = 0.035974;
    # (0.1, 0.9) vs 0: m = (0.55, 0.45), (0.453358 + 0.597837) / 2 = 0.525597;
    # (0.2, 0.8) vs 1: m = (0.1, 0.9), (0.044403 + 0.105361) / 2 = 0.074882;
    # (0.8, 0.2) vs 1: m = (0.4, 0.6), (0.334795 + 0.510826) / 2 = 0.422810
    a, b, c, d = 0.035974, 0.525597, 0.074882, 0.422810
    np.testing.assert_allclose(result.losses, [a, a, a, b, c, c, c, d], atol=2e-6)
    # mean (3a + b + 3c + d) / 8 = 0.160122: 6 of 8 below, SR 0.75, int(0.75 * 8 / 2) = 3 per class
    np.testing.assert_array_equal(np.flatnonzero(result.labeled), [0, 1, 2, 4, 5, 6])
    # co-refinement weights: 1 below JSD 0.5, 1 - JSD above (only sample 3)
    np.testing.assert_allclose(result.clean_prob, [1, 1, 1, 1 - b, 1, 1, 1, 1], atol=2e-6)
    assert result.fit is None
    # the AUC ranks by -JSD, not by the tied weights: sample 3 and 7 truly noisy -> AUC 1
    quality = division.division_quality(result, labels == np.array([0, 0, 0, 1, 1, 1, 1, 0]))
    assert quality["auc"] == 1.0 and quality["precision"] == 1.0 and quality["recall"] == 1.0


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: division.select([0.5], [0], 0.5, strategy="unicon"), "division strategy 'unicon' selects from both nets' predictions"),
        (lambda: division.divide([0.1, 0.9], 0.5, strategy="unicon", labels=[0, 1]), "use dmkeras.division.unicon_divide"),
        (lambda: division.label_divergence(np.ones((3, 2)) / 2, np.ones((3, 3)) / 3, [0, 0, 0]), "one shape"),
        (lambda: division.label_divergence(np.ones((2, 2)) / 2, np.ones((2, 2)) / 2, [0, 2]), r"labels must lie in \[0, 2\)"),
    ],
)
def test_bad_input_is_one_clear_error(call, message):
    with pytest.raises(DmkerasError, match=message):
        call()


def test_unicon_is_a_division_and_in_config():
    from dmkeras import config

    assert "unicon" in division.DIVISIONS and "unicon" not in division.LOSS_DIVISIONS
    assert config.DIVISIONS == division.DIVISIONS
