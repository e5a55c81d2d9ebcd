"""Co-divide arithmetic: per-sample losses, normalisation, history, thresholds, quality."""

import math

import numpy as np
import pytest

from dmkeras import division


def test_per_sample_cross_entropy_by_hand():
    logits = np.array([[0.0, math.log(3.0)], [2.0, 2.0]])  # softmax (0.25, 0.75), (0.5, 0.5)
    np.testing.assert_allclose(
        division.per_sample_cross_entropy(logits, np.array([1, 0])), [-math.log(0.75), math.log(2.0)], rtol=1e-12
    )


def test_min_max_normalize():
    np.testing.assert_allclose(division.min_max_normalize(np.array([2.0, 4.0, 3.0])), [0.0, 1.0, 0.5])
    np.testing.assert_array_equal(division.min_max_normalize(np.array([5.0, 5.0])), [0.0, 0.0])


def test_loss_history_averages_the_last_k_epochs():
    history = division.LossHistory(2)
    np.testing.assert_allclose(history.add(np.array([0.0, 1.0])), [0.0, 1.0])
    np.testing.assert_allclose(history.add(np.array([1.0, 1.0])), [0.5, 1.0])
    np.testing.assert_allclose(history.add(np.array([1.0, 0.0])), [1.0, 0.5])  # the first epoch dropped out


def test_divide_labels_the_low_loss_mode():
    rng = np.random.default_rng(0)
    clean = rng.normal(0.1, 0.03, 800)
    noisy = rng.normal(0.8, 0.05, 200)
    losses = np.clip(np.concatenate([clean, noisy]), 0, 1)
    result = division.divide(losses, p_threshold=0.5)
    assert result.labeled[:800].mean() > 0.99 and result.labeled[800:].mean() < 0.01
    np.testing.assert_array_equal(result.labeled, result.clean_prob > 0.5)
    assert set(result.labeled_indices) | set(result.unlabeled_indices) == set(range(1000))


def test_roc_auc_by_hand_with_ties():
    # positives score (0.9, 0.5), negatives (0.5, 0.1): pairs (0.9>0.5, 0.9>0.1, 0.5=0.5 half, 0.5>0.1) = 3.5 / 4
    assert division.roc_auc(np.array([0.9, 0.5, 0.5, 0.1]), np.array([True, True, False, False])) == pytest.approx(0.875)
    assert math.isnan(division.roc_auc(np.array([0.1, 0.2]), np.array([True, True])))


def test_division_quality_by_hand():
    clean_prob = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    is_clean = np.array([True, True, False, True, False])
    result = division.Division(losses=1 - clean_prob, clean_prob=clean_prob, labeled=clean_prob > 0.5, fit=None)
    quality = division.division_quality(result, is_clean)
    assert quality["precision"] == pytest.approx(2 / 3)  # labeled: 0, 1, 2; clean among them: 0, 1
    assert quality["recall"] == pytest.approx(2 / 3)  # clean: 0, 1, 3; labeled among them: 0, 1
    assert quality["auc"] == pytest.approx(5 / 6)  # clean (0.9, 0.8, 0.2) vs noisy (0.7, 0.1): 5 of 6 pairs ordered


def test_min_class_labeled_fraction_finds_an_emptied_class():
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2])
    labeled = np.array([1, 1, 0, 0, 1, 0, 0, 0, 0], bool)
    assert division.min_class_labeled_fraction(labeled, labels, 3) == 0.0  # class 2: none of 3
    labeled[6] = True
    assert division.min_class_labeled_fraction(labeled, labels, 3) == pytest.approx(1 / 3)
    # a class without any sample (num_classes 4) does not count
    assert division.min_class_labeled_fraction(labeled, labels, 4) == pytest.approx(1 / 3)
