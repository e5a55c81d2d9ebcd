"""Division strategies: gmm (reference), per_class_gmm, class_floor -- `select`, `clean_probability`, `divide`."""

import math

import numpy as np
import pytest

from dmkeras import division, gmm
from dmkeras.errors import DmkerasError


def _naive_select(prob, labels, threshold, strategy, class_floor, inclusive):
    """Reference implementation of `select`, one class at a time with Python sorting."""
    kept = [(p >= threshold) if inclusive else (p > threshold) for p in prob]
    if strategy == "gmm":
        return np.array(kept, bool)
    for c in sorted(set(int(v) for v in labels)):
        members = [i for i in range(len(prob)) if labels[i] == c]
        floor = math.ceil(round(class_floor * len(members), 9))
        if strategy == "per_class_gmm" or class_floor > 0:
            floor = max(1, floor)
        for i in sorted(members, key=lambda i: (-prob[i], i))[:floor]:
            kept[i] = True
    return np.array(kept, bool)


# -- select: thresholds ------------------------------------------------------------------------------


def test_select_strict_and_inclusive_at_zero():
    prob = np.array([0.0, 0.2, 1.0, 0.0])
    np.testing.assert_array_equal(division.select(prob, None, 0.0), [False, True, True, False])
    np.testing.assert_array_equal(division.select(prob, None, 0.0, inclusive=True), [True, True, True, True])


def test_select_strict_and_inclusive_at_the_exact_threshold():
    prob = np.array([0.5, 0.5000001, 0.4999999, 1.0])
    np.testing.assert_array_equal(division.select(prob, None, 0.5), [False, True, False, True])
    np.testing.assert_array_equal(division.select(prob, None, 0.5, inclusive=True), [True, True, False, True])
    np.testing.assert_array_equal(division.select(prob, None, 1.0), [False, False, False, False])
    np.testing.assert_array_equal(division.select(prob, None, 1.0, inclusive=True), [False, False, False, True])


def test_select_gmm_ignores_labels_and_class_floor():
    prob = np.array([0.1, 0.2, 0.9, 0.3])
    labels = np.array([0, 0, 1, 2])
    kept = division.select(prob, labels, 0.5, strategy="gmm", class_floor=0.9)
    np.testing.assert_array_equal(kept, [False, False, True, False])  # classes 0 and 2 are left empty


# -- select: floors ----------------------------------------------------------------------------------


def test_class_floor_a_class_of_10_at_a_quarter_keeps_its_top_3():
    prob = np.array([0.05, 0.30, 0.10, 0.45, 0.20, 0.01, 0.40, 0.15, 0.02, 0.25])  # all below 0.5
    labels = np.zeros(10, np.int64)
    for strategy in ("class_floor", "per_class_gmm"):
        kept = division.select(prob, labels, 0.5, strategy=strategy, class_floor=0.25)  # ceil(2.5) = 3
        np.testing.assert_array_equal(np.flatnonzero(kept), [1, 3, 6])  # 0.30, 0.45, 0.40


def test_floor_counts_are_exact_without_float_noise():
    # 0.3 * 10 == 3.0000000000000004 and 0.1 * 30 == 3.0000000000000004 in floating point: still 3
    prob = np.linspace(0.4, 0.0, 30)
    assert division.select(prob[:10], np.zeros(10, int), 0.5, strategy="class_floor", class_floor=0.3).sum() == 3
    assert division.select(prob, np.zeros(30, int), 0.5, strategy="class_floor", class_floor=0.1).sum() == 3
    assert division.select(prob, np.zeros(30, int), 0.5, strategy="class_floor", class_floor=0.7).sum() == 21
    assert division.select(prob, np.zeros(30, int), 0.5, strategy="class_floor", class_floor=1.0).sum() == 30


def test_floor_ties_are_broken_by_index():
    prob = np.array([0.2, 0.3, 0.3, 0.3, 0.1, 0.3])
    labels = np.zeros(6, np.int64)
    kept = division.select(prob, labels, 0.5, strategy="class_floor", class_floor=0.5)  # 3 of 6
    np.testing.assert_array_equal(np.flatnonzero(kept), [1, 2, 3])
    kept = division.select(np.zeros(6), labels, 0.0, strategy="per_class_gmm")  # floor 1: the lowest index
    np.testing.assert_array_equal(np.flatnonzero(kept), [0])


def test_floors_with_interleaved_classes():
    labels = np.array([2, 0, 2, 1, 0, 2, 0, 1, 2, 0])
    prob = np.array([0.9, 0.1, 0.3, 0.2, 0.4, 0.2, 0.3, 0.6, 0.1, 0.45])
    # threshold 0.5 keeps 0 (class 2) and 7 (class 1); class_floor 0.5: class 0 (4 samples) keeps 2,
    # class 1 (2 samples) keeps 1 (already), class 2 (4 samples) keeps 2: 0 and then 2 (0.3)
    kept = division.select(prob, labels, 0.5, strategy="class_floor", class_floor=0.5)
    np.testing.assert_array_equal(np.flatnonzero(kept), [0, 2, 4, 7, 9])
    # a class already over its floor keeps everything over the threshold, nothing more
    kept = division.select(prob, labels, 0.15, strategy="class_floor", class_floor=0.25)
    np.testing.assert_array_equal(kept, prob > 0.15)


def test_zero_floor_per_class_gmm_keeps_one_per_class_class_floor_keeps_none():
    prob = np.array([0.1, 0.2, 0.3, 0.05])
    labels = np.array([0, 0, 1, 3])  # class 2 absent
    np.testing.assert_array_equal(
        division.select(prob, labels, 0.5, strategy="per_class_gmm"), [False, True, True, True]
    )
    np.testing.assert_array_equal(division.select(prob, labels, 0.5, strategy="class_floor"), [False] * 4)


def test_select_matches_the_naive_reference_on_random_draws():
    rng = np.random.default_rng(1)
    for _ in range(300):
        n = int(rng.integers(1, 40))
        labels = rng.integers(0, int(rng.integers(1, 6)), n)
        prob = rng.choice([0.0, 0.25, 0.5, 1.0], n) if rng.random() < 0.3 else rng.random(n)
        threshold = float(rng.choice([0.0, 0.25, 0.5, 0.9, 1.0]))
        strategy = str(rng.choice(division.LOSS_DIVISIONS))
        class_floor = float(rng.choice([0.0, 0.1, 0.25, 0.3, 0.5, 1.0]))
        inclusive = bool(rng.random() < 0.5)
        kept = division.select(prob, labels, threshold, strategy=strategy, class_floor=class_floor, inclusive=inclusive)
        expected = _naive_select(prob, labels, threshold, strategy, class_floor, inclusive)
        np.testing.assert_array_equal(kept, expected)
        assert kept.dtype == bool
        if strategy == "per_class_gmm" or (strategy == "class_floor" and class_floor > 0):
            assert set(labels[kept]) == set(labels)  # no class left empty


# -- clean_probability and divide ----------------------------------------------------------------------


def _asymmetric_case(seed=0, per_class=400):
    """5 classes; class 2 is hard: its clean losses sit above every other class's noisy losses."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(5), per_class)
    is_clean = np.ones(len(labels), bool)
    losses = np.empty(len(labels))
    for c in range(5):
        idx = np.flatnonzero(labels == c)
        noisy = idx[rng.random(per_class) < (0.4 if c == 2 else 0.2)]
        is_clean[noisy] = False
        clean_mean, noisy_mean = (0.72, 0.95) if c == 2 else (0.1, 0.45)
        losses[idx] = rng.normal(clean_mean, 0.04, per_class)
        losses[noisy] = rng.normal(noisy_mean, 0.04, len(noisy))
    return division.min_max_normalize(np.clip(losses, 0, None)), labels, is_clean


def test_per_class_gmm_keeps_the_hard_class_that_the_global_gmm_empties():
    losses, labels, is_clean = _asymmetric_case()
    c2 = labels == 2
    assert losses[c2 & is_clean].min() > losses[~c2 & ~is_clean].max()  # the premise of the case
    global_division = division.divide(losses, 0.5)
    per_class = division.divide(losses, 0.5, strategy="per_class_gmm", labels=labels, num_classes=5)
    assert global_division.labeled[c2].mean() < 0.10
    assert per_class.labeled[c2 & is_clean].sum() / (c2 & is_clean).sum() > 0.80
    quality = division.division_quality(per_class, is_clean)
    assert quality["precision"] > 0.95 and quality["recall"] > 0.9
    assert per_class.fit is None and sorted(per_class.class_fits) == [0, 1, 2, 3, 4]
    assert all(isinstance(f, gmm.GMMFit) for f in per_class.class_fits.values())


def test_per_class_gmm_probabilities_are_fit_loss_gmm_on_each_class():
    losses, labels, _ = _asymmetric_case(seed=1, per_class=300)
    prob, fits = division.clean_probability(losses, labels, 5, strategy="per_class_gmm")
    for c in range(5):
        idx = labels == c
        fit, oracle = gmm.fit_loss_gmm(losses[idx])
        np.testing.assert_array_equal(prob[idx], oracle)
        np.testing.assert_array_equal(fits[c].means, fit.means)
        np.testing.assert_array_equal(fits[c].weights, fit.weights)


def test_gmm_and_class_floor_probabilities_are_the_reference():
    losses, labels, _ = _asymmetric_case(seed=2, per_class=200)
    fit, reference = gmm.fit_loss_gmm(losses)
    for strategy in ("gmm", "class_floor"):
        prob, got_fit = division.clean_probability(losses, labels, strategy=strategy)
        np.testing.assert_array_equal(prob, reference)
        np.testing.assert_array_equal(got_fit.means, fit.means)
    floored = division.divide(losses, 0.5, strategy="class_floor", labels=labels, class_floor=0.5)
    assert isinstance(floored.fit, gmm.GMMFit) and floored.class_fits is None
    np.testing.assert_array_equal(floored.clean_prob, reference)
    assert (floored.labeled[labels == 2]).sum() == 100  # ceil(0.5 * 200): topped up to the floor
    np.testing.assert_array_equal(floored.labeled[labels != 2], (reference > 0.5)[labels != 2])


def test_divide_default_is_unchanged_and_positional():
    losses, labels, _ = _asymmetric_case(seed=3, per_class=100)
    fit, prob = gmm.fit_loss_gmm(losses)
    result = division.divide(losses, 0.5)
    np.testing.assert_array_equal(result.labeled, prob > 0.5)
    np.testing.assert_array_equal(result.clean_prob, prob)
    assert isinstance(result.fit, gmm.GMMFit) and result.class_fits is None
    with_labels = division.divide(losses, 0.5, strategy="gmm", labels=labels, num_classes=5, class_floor=0.9)
    np.testing.assert_array_equal(with_labels.labeled, result.labeled)  # gmm ignores labels and floors


def test_small_and_degenerate_classes_get_probability_one():
    losses = np.array([0.3, 0.9, 0.2, 0.2, 0.2, 0.7, 0.1, 0.8, 0.05])
    labels = np.array([0, 1, 2, 2, 2, 3, 3, 3, 3])  # class 0 and 1: 1 sample; class 2: all equal
    prob, fits = division.clean_probability(losses, labels, strategy="per_class_gmm")
    np.testing.assert_array_equal(prob[:5], 1.0)
    assert sorted(fits) == [0, 1, 2, 3]
    for c in (0, 1, 2):
        np.testing.assert_array_equal(fits[c].weights, [1.0, 0.0])
        assert fits[c].n_iter == 0 and fits[c].converged
        np.testing.assert_array_equal(fits[c].clean_probability(losses[labels == c]), 1.0)
    _, degenerate = gmm.fit_loss_gmm(np.array([0.3, 0.3]))
    np.testing.assert_array_equal(degenerate, 1.0)
    assert fits[0].lower_bound == pytest.approx(gmm.fit_loss_gmm(np.array([0.3, 0.3]))[0].lower_bound)
    # all losses equal everywhere: every sample is clean
    prob, _ = division.clean_probability(np.full(6, 0.5), [0, 0, 1, 1, 1, 2], strategy="per_class_gmm")
    np.testing.assert_array_equal(prob, 1.0)


def test_class_aware_divisions_never_leave_a_class_empty():
    rng = np.random.default_rng(7)
    sizes_pool = [1, 2, 3, 5, 8]  # few distinct sizes: the GMM compiles once per input length
    for draw in range(40):
        num_classes = int(rng.integers(1, 5))
        sizes = rng.choice(sizes_pool, num_classes)
        labels = np.repeat(np.arange(num_classes), sizes)
        rng.shuffle(labels)
        kind = draw % 4
        if kind == 0:
            losses = np.full(len(labels), 0.25)  # all equal
        elif kind == 1:
            losses = rng.choice([0.0, 0.5, 1.0], len(labels))  # heavy ties
        else:
            losses = rng.random(len(labels))
        threshold = float(rng.choice([0.0, 0.5, 0.99, 1.0]))
        class_floor = float(rng.choice([0.0, 0.1, 0.5]))
        per_class = division.divide(
            losses, threshold, strategy="per_class_gmm", labels=labels, num_classes=num_classes, class_floor=class_floor
        )
        assert set(labels[per_class.labeled]) == set(range(num_classes)), (draw, sizes, threshold)
        assert np.all((per_class.clean_prob >= 0) & (per_class.clean_prob <= 1))
        if kind == 0:
            np.testing.assert_array_equal(per_class.clean_prob, 1.0)
        for c in range(num_classes):
            assert per_class.labeled[labels == c].sum() >= max(1, math.ceil(round(class_floor * sizes[c], 9)))
        # class_floor on the reference's probabilities (select's floors are covered at length above;
        # a few draws of every kind here, as each new total length compiles the global GMM anew)
        if len(labels) >= 2 and draw % 5 == 0:  # the global fit needs 2 samples
            floored = division.divide(losses, threshold, strategy="class_floor", labels=labels, class_floor=max(class_floor, 0.01))
            assert set(labels[floored.labeled]) == set(range(num_classes)), (draw, sizes, threshold)


def test_division_without_class_fits_still_constructs():
    result = division.Division(losses=np.zeros(2), clean_prob=np.ones(2), labeled=np.ones(2, bool), fit=None)
    assert result.class_fits is None and list(result.labeled_indices) == [0, 1]


# -- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: division.select([0.5], [0], 0.5, strategy="per_class"), "unknown division strategy 'per_class'"),
        (lambda: division.divide([0.1, 0.9], 0.5, strategy="kmeans"), "gmm, per_class_gmm, class_floor"),
        (lambda: division.clean_probability([0.1, 0.9], strategy=None), "unknown division strategy"),
        (lambda: division.select([0.5, 0.2], None, 0.5, strategy="per_class_gmm"), "needs the given labels"),
        (lambda: division.select([0.5, 0.2], None, 0.5, strategy="class_floor"), "needs the given labels"),
        (lambda: division.divide([0.1, 0.9], 0.5, strategy="per_class_gmm"), "needs the given labels"),
        (lambda: division.divide([0.1, 0.9], 0.5, strategy="class_floor"), "needs the given labels"),
        (lambda: division.select([0.5, 0.2], [0], 0.5, strategy="class_floor"), "there are 2 losses / clean probabilities but labels has 1 labels"),
        (lambda: division.divide([0.1, 0.9, 0.3], 0.5, strategy="per_class_gmm", labels=[0, 1]), "labels has 2"),
        (lambda: division.select([0.5], [0], 0.5, strategy="class_floor", class_floor=1.5), "class_floor must lie in \\[0, 1\\]"),
        (lambda: division.select([0.5], [0], 0.5, strategy="class_floor", class_floor=-0.1), "class_floor"),
        (lambda: division.divide([0.1, 0.9], 0.5, strategy="class_floor", labels=[0, 1], class_floor=2), "class_floor"),
        (lambda: division.select([0.5], None, 1.2), "threshold must lie in \\[0, 1\\]"),
        (lambda: division.select([0.5], None, -0.01, inclusive=True), "threshold must lie in \\[0, 1\\]"),
        (lambda: division.select([0.5], None, float("nan")), "threshold"),
        (lambda: division.divide([0.1, 0.9], 1.5), "p_threshold must lie in \\[0, 1\\]"),
        (lambda: division.divide([0.1, 0.9], 0.5, strategy="per_class_gmm", labels=[0, 3], num_classes=3), r"labels must lie in \[0, 3\), got 3"),
        (lambda: division.clean_probability([0.1, 0.9], [0, -1], strategy="per_class_gmm"), r"labels must lie in \[0, "),
        (lambda: division.clean_probability([0.1, 0.9], [0, 0.5], strategy="per_class_gmm"), "integer class indices"),
        (lambda: division.clean_probability([0.1, 0.9], [0, 1], num_classes=0, strategy="per_class_gmm"), "num_classes"),
        (lambda: division.clean_probability([0.1, float("nan")], [0, 0], strategy="per_class_gmm"), "non-finite"),
        (lambda: division.select([0.5, float("nan")], None, 0.5), "non-finite"),
    ],
)
def test_errors(call, message):
    with pytest.raises(DmkerasError, match=message) as info:
        call()
    assert "\n" not in str(info.value)
