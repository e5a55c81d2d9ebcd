"""dmkeras.label_issues: DivideMix's clean probability behind a cleanlab-shaped API.

The GMM is XLA-compiled once per distinct input length, so the tests share three sample counts:
the constructed case (N = 200, given-label classes of 40 each for per_class_gmm) and the hand
example (N = 10).
"""

import math
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from dmkeras import audit, division
from dmkeras.errors import DmkerasError
from dmkeras.label_issues import (
    find_label_issues,
    given_label_cross_entropy,
    label_quality_scores,
)

N, K, FLIPS_PER_CLASS = 200, 5, 6  # 30 flipped labels in all


def noisy_case(seed=0, true_class_prob=(0.85, 0.99)):
    """pred_probs putting U(true_class_prob) on the true class (the rest Dirichlet-spread over the
    others), and labels of which 6 per class are flipped to the next class, so every given-label
    class keeps 40 samples. Returns (labels, pred_probs, sorted flipped indices)."""
    rng = np.random.default_rng(seed)
    true = np.arange(N) % K
    top = rng.uniform(*true_class_prob, N)
    probs = np.zeros((N, K))
    probs[np.arange(N), true] = top
    others = (true[:, None] + np.arange(1, K)) % K
    probs[np.arange(N)[:, None], others] = rng.dirichlet(np.ones(K - 1), N) * (1.0 - top)[:, None]
    flipped = np.sort(
        np.concatenate([rng.choice(np.flatnonzero(true == c), FLIPS_PER_CLASS, replace=False) for c in range(K)])
    )
    labels = true.copy()
    labels[flipped] = (true[flipped] + 1) % K
    return labels, probs, flipped


# The hand example: every label is 0 (K = 2); rows 1, 3, 5, 7 give it little probability.
HAND_GIVEN_PROB = np.array([0.9, 0.05, 0.92, 0.2, 0.88, 0.05, 0.91, 0.1, 0.9, 0.89])
HAND_LABELS = np.zeros(10, np.int64)


def two_class_probs(given_prob):
    return np.stack([given_prob, 1.0 - given_prob], axis=1)


def normalized_losses(labels, probs):
    """What DivideMix fits its GMM to, computed here without the module: min-max scaled -log p[y]."""
    losses = -np.log(probs[np.arange(len(labels)), labels])
    return (losses - losses.min()) / (losses.max() - losses.min())


def sklearn_clean_prob(x):
    """The reference's GaussianMixture (as tests/test_gmm.py): posterior of the low-mean component."""
    g = GaussianMixture(n_components=2, max_iter=10, tol=1e-2, reg_covar=5e-4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        g.fit(x[:, None])
    return g.predict_proba(x[:, None])[:, int(np.argmin(g.means_.ravel()))]


# ------------------------------------------------------------------------------- the scores


@pytest.mark.parametrize("strategy", division.LOSS_DIVISIONS)
def test_scores_are_the_divisions_clean_prob(strategy):
    labels, probs, _ = noisy_case()
    expected = division.divide(normalized_losses(labels, probs), 0.5, strategy=strategy, labels=labels, num_classes=K)
    scores = label_quality_scores(labels, probs, strategy=strategy)
    assert scores.shape == (N,) and scores.dtype == np.float64
    np.testing.assert_array_equal(scores, expected.clean_prob)  # the same computation, bit for bit


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_match_sklearn_gaussian_mixture(seed):
    # Overlapping losses (true-class probability down to 0.3). 1e-2 is tests/test_gmm.py's posterior
    # tolerance: the EM is scikit-learn's, only the k-means start differs (k-means++ there, Lloyd
    # from (min, max) here), and with tol=1e-2 / max_iter=10 both stop within 1e-2 of each other.
    labels, probs, _ = noisy_case(seed, true_class_prob=(0.3, 0.95))
    scores = label_quality_scores(labels, probs)
    assert np.max(np.abs(scores - sklearn_clean_prob(normalized_losses(labels, probs)))) < 1e-2


def test_per_class_scores_match_one_sklearn_mixture_per_class():
    labels, probs, _ = noisy_case()
    scores = label_quality_scores(labels, probs, strategy="per_class_gmm")
    x = normalized_losses(labels, probs)  # normalised over all samples, then split by class
    for c in range(K):
        in_class = labels == c
        assert np.max(np.abs(scores[in_class] - sklearn_clean_prob(x[in_class]))) < 1e-2


def test_a_zero_probability_gives_the_float32_floor_loss_not_inf():
    probs = two_class_probs(np.where(np.arange(10) == 1, 0.0, HAND_GIVEN_PROB))
    np.testing.assert_allclose(given_label_cross_entropy(probs, HAND_LABELS)[1], -math.log(np.finfo(np.float32).tiny))
    assert math.isclose(-math.log(np.finfo(np.float32).tiny), 87.3365, abs_tol=1e-4)
    scores = label_quality_scores(HAND_LABELS, probs)
    assert np.all(np.isfinite(scores)) and scores[1] < 1e-6


def test_equal_losses_mean_no_evidence_of_noise():
    probs = np.full((10, 2), 0.5)
    np.testing.assert_array_equal(label_quality_scores(HAND_LABELS, probs), np.ones(10))
    assert not find_label_issues(HAND_LABELS, probs).any()


def test_rows_within_the_sum_tolerance_and_list_inputs_are_accepted():
    probs = two_class_probs(HAND_GIVEN_PROB) * 1.0009  # rows sum to 1.0009 <= 1 + 1e-3
    scores = label_quality_scores(HAND_LABELS.tolist(), probs.tolist())
    assert scores.shape == (10,)


# -------------------------------------------------------------------------------- the mask


@pytest.mark.parametrize("strategy", division.LOSS_DIVISIONS)
def test_mask_flags_exactly_the_flipped_labels(strategy):
    # Flipped labels get p <= 0.15 (loss >= 1.9), clean ones p >= 0.85 (loss <= 0.16): two modes
    # far apart, so every flipped sample has clean probability ~0 and every clean one ~1.
    labels, probs, flipped = noisy_case()
    mask = find_label_issues(labels, probs, strategy=strategy)
    assert mask.dtype == bool and mask.shape == (N,)
    np.testing.assert_array_equal(np.flatnonzero(mask), flipped)  # precision 30/30, recall 30/30


def test_mask_is_clean_prob_at_most_threshold():
    labels, probs, _ = noisy_case(1, true_class_prob=(0.3, 0.95))
    scores = label_quality_scores(labels, probs)
    for threshold in (0.0, 0.2, 0.5, 0.8):
        np.testing.assert_array_equal(find_label_issues(labels, probs, threshold=threshold), scores <= threshold)
    assert find_label_issues(labels, probs, threshold=1.0).all()  # every probability is <= 1


def test_class_floor_keeps_the_whole_class_at_one():
    labels, probs, _ = noisy_case()
    # ceil(1.0 * 40) = 40: every class keeps all its samples, so nothing is flagged
    assert not find_label_issues(labels, probs, strategy="class_floor", class_floor=1.0).any()
    # with the gmm strategy the floor is only validated
    assert find_label_issues(labels, probs, strategy="gmm", class_floor=1.0).sum() == 30


# ----------------------------------------------------------------------------- the rankings


def test_hand_example_is_flagged_as_built():
    mask = find_label_issues(HAND_LABELS, two_class_probs(HAND_GIVEN_PROB))
    np.testing.assert_array_equal(np.flatnonzero(mask), [1, 3, 5, 7])


def test_ranking_by_self_confidence_by_hand():
    # given-label probabilities of the flagged rows: 1: 0.05, 3: 0.2, 5: 0.05, 7: 0.1;
    # lowest first, the tie of 1 and 5 in index order
    ranked = find_label_issues(HAND_LABELS, two_class_probs(HAND_GIVEN_PROB), return_indices_ranked_by="self_confidence")
    assert ranked.dtype == np.int64
    np.testing.assert_array_equal(ranked, [1, 5, 7, 3])


def test_ranking_by_clean_probability_by_hand():
    # Above the clean mode the clean posterior falls as the loss rises (the noisy component is
    # the wider one), so: 1 and 5 (loss 3.0, equal, index order), 7 (2.3), 3 (1.6).
    probs = two_class_probs(HAND_GIVEN_PROB)
    ranked = find_label_issues(HAND_LABELS, probs, return_indices_ranked_by="clean_probability")
    np.testing.assert_array_equal(ranked, [1, 5, 7, 3])
    scores = label_quality_scores(HAND_LABELS, probs)
    assert scores[1] == scores[5] and scores[5] <= scores[7] <= scores[3] <= 0.5


def test_ranking_by_clean_probability_is_the_stable_sort_of_the_scores():
    labels, probs, _ = noisy_case(2, true_class_prob=(0.3, 0.95))
    scores = label_quality_scores(labels, probs)
    flagged = np.flatnonzero(scores <= 0.5)
    expected = flagged[np.argsort(scores[flagged], kind="stable")]
    np.testing.assert_array_equal(find_label_issues(labels, probs, return_indices_ranked_by="clean_probability"), expected)


def test_self_confidence_of_nets_is_their_mean_softmax():
    # threshold 1.0 flags every sample, so the order is the mean softmax alone (no GMM involved).
    net_a = np.array([0.9, 0.8, 0.02, 0.25, 0.1, 0.7, 0.95, 0.6, 0.85, 0.5])
    net_b = np.array([0.9, 0.8, 0.58, 0.25, 0.1, 0.7, 0.95, 0.6, 0.85, 0.5])
    # mean p: 0.9 0.8 0.30 0.25 0.1 0.7 0.95 0.6 0.85 0.5; row 2 comes after row 3 (0.30 > 0.25),
    # although its mean loss (-log .02 - log .58) / 2 = 2.23 is above row 3's 1.39
    logits = [np.log(two_class_probs(p)) for p in (net_a, net_b)]
    ranked = find_label_issues(HAND_LABELS, logits_per_net=logits, threshold=1.0, return_indices_ranked_by="self_confidence")
    np.testing.assert_array_equal(ranked, [4, 3, 2, 9, 7, 5, 1, 8, 0, 6])


# ---------------------------------------------------------------------------- logits per net


def two_nets(seed=0):
    """Two nets' logits on the constructed case; the second has memorised 5 of the flipped labels."""
    labels, probs, flipped = noisy_case(seed)
    rng = np.random.default_rng(seed + 100)
    logits_a = np.log(probs) + rng.normal(0.0, 0.3, probs.shape)
    logits_b = np.log(probs) + rng.normal(0.0, 0.3, probs.shape)
    memorised = flipped[:5]
    logits_b[memorised, labels[memorised]] += 8.0  # now the given (wrong) label wins in net b
    return labels, logits_a, logits_b, memorised


def test_nets_score_is_the_mean_of_each_nets_score():
    labels, logits_a, logits_b, memorised = two_nets()
    score_a = label_quality_scores(labels, logits_per_net=[logits_a])
    score_b = label_quality_scores(labels, logits_per_net=[logits_b])
    assert np.all(np.abs(score_a[memorised] - score_b[memorised]) > 0.9)  # the nets disagree there
    both = label_quality_scores(labels, logits_per_net=[logits_a, logits_b])
    np.testing.assert_array_equal(both, (score_a + score_b) / 2.0)
    # the audit scores a run's nets the same way
    expected = audit.score_samples([logits_a, logits_b], labels, K).mean_clean_prob
    np.testing.assert_allclose(both, expected, rtol=0, atol=1e-15)


def test_one_net_logits_score_as_their_softmax_probabilities():
    labels, logits_a, _, _ = two_nets()
    probs = np.exp(logits_a - logits_a.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    # -log softmax(z)[y] and logsumexp(z) - z[y] agree to rounding (~1e-15 on losses of order 1)
    np.testing.assert_allclose(
        label_quality_scores(labels, probs), label_quality_scores(labels, logits_per_net=[logits_a]), rtol=0, atol=1e-9
    )


def test_nets_mask_uses_the_mean_clean_prob():
    labels, logits_a, logits_b, _ = two_nets()
    mean = label_quality_scores(labels, logits_per_net=(logits_a, logits_b))
    np.testing.assert_array_equal(find_label_issues(labels, logits_per_net=(logits_a, logits_b)), mean <= 0.5)
    # a (nets, N, K) array is a sequence of nets too
    stacked = np.stack([logits_a, logits_b])
    np.testing.assert_array_equal(label_quality_scores(labels, logits_per_net=stacked), mean)


# ---------------------------------------------------------------------------------- cleanlab


def test_cleanlab_flags_the_same_flipped_samples_on_separable_data():
    cleanlab = pytest.importorskip("cleanlab")
    for seed in (0, 1):
        labels, probs, flipped = noisy_case(seed)
        ours = find_label_issues(labels, probs)
        theirs = cleanlab.filter.find_label_issues(labels, probs)
        # every flipped sample has p[true class] >= 0.85, above cleanlab's per-class threshold (the
        # mean self-confidence of a class, ~0.8 with 6 of 40 flipped in), so its confident joint
        # counts it off the diagonal; ours flags them as the high-loss mode
        overlap = np.flatnonzero(ours & theirs)
        np.testing.assert_array_equal(overlap, flipped)
        assert ours.sum() == theirs.sum() == len(flipped)


# ------------------------------------------------------------------------------- bad inputs

GOOD_LABELS = [0, 1, 0, 1]
GOOD_PROBS = [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]]
GOOD_LOGITS = np.log(np.array(GOOD_PROBS))

BAD_INPUTS = [
    ({"labels": [[0], [1], [0], [1]]}, r"^labels must be 1-D \(got shape \(4, 1\)\)$"),
    ({"labels": [0, 0.5, 1, 1]}, r"^labels must be integer class indices \(got non-integer values\)$"),
    ({"labels": ["a", "b", "a", "b"]}, r"^labels must be integer class indices \(got dtype <U1\)$"),
    ({"labels": [0, 1, 2, 1]}, r"^labels must lie in \[0, 2\), got 2 \(1 sample\)$"),
    ({"labels": [0, -1, 1, 1]}, r"^labels must lie in \[0, 2\), got -1 \(1 sample\)$"),
    ({"labels": [0, 1, 0]}, r"^labels has 3 entries but pred_probs has 4 rows$"),
    ({"pred_probs": None, "logits_per_net": [GOOD_LOGITS[:3]]}, r"^labels has 4 entries but logits_per_net has 3 rows$"),
    ({"logits_per_net": [GOOD_LOGITS]}, r"^pass exactly one of pred_probs and logits_per_net \(got both\)$"),
    ({"pred_probs": None}, r"^pass exactly one of pred_probs and logits_per_net \(got neither\)$"),
    ({"pred_probs": [0.9, 0.1, 0.5, 0.5]}, r"^pred_probs must be a 2-D \(N, K\) array, got shape \(4,\)$"),
    ({"pred_probs": [[1.2, -0.2], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]]}, r"^pred_probs must be non-negative: 1 negative value\(s\), first in row 0$"),
    ({"pred_probs": [[0.9, 0.1], [0.2, 0.8], [0.5, 0.4], [0.3, 0.7]]}, r"^pred_probs rows must sum to 1 \(within 0\.001\): 1 do not, row 2 sums to 0\.9$"),
    ({"pred_probs": [[0.9, 0.1], [np.nan, 0.8], [0.6, 0.4], [0.3, np.inf]]}, r"^pred_probs contains 2 non-finite value\(s\) \(NaN or inf\), first in row 1$"),
    ({"pred_probs": [[0.9, "x"]] * 4}, r"^pred_probs must be a numeric \(N, K\) array"),
    ({"pred_probs": None, "logits_per_net": [GOOD_LOGITS, np.where(np.eye(4, 2) > 0, np.inf, GOOD_LOGITS)]},
     r"^logits_per_net\[1\] contains 2 non-finite value\(s\) \(NaN or inf\), first in row 0$"),
    ({"pred_probs": None, "logits_per_net": [GOOD_LOGITS, np.zeros((4, 3))]},
     r"^the nets' logits differ in shape: logits_per_net\[0\] is \(4, 2\), logits_per_net\[1\] is \(4, 3\)$"),
    ({"pred_probs": None, "logits_per_net": GOOD_LOGITS}, r"^logits_per_net\[0\] must be a 2-D \(N, K\) array, got shape \(2,\)$"),
    ({"pred_probs": None, "logits_per_net": []}, r"^logits_per_net is empty: pass one \(N, K\) logits array per net$"),
    ({"pred_probs": None, "logits_per_net": 3.0}, r"^logits_per_net must be a list of \(N, K\) logits arrays, one per net, got float$"),
    ({"strategy": "foo"}, r"^unknown division strategy 'foo'; expected one of: gmm, per_class_gmm, class_floor$"),
    ({"class_floor": 2}, r"^class_floor must lie in \[0, 1\], got 2$"),
    ({"num_classes": 3}, r"^num_classes is 3 but pred_probs has 2 columns$"),
    ({"num_classes": 0}, r"^num_classes must be a positive integer, got 0$"),
    ({"labels": [0], "pred_probs": [[1.0, 0.0]]}, r"^need at least 2 samples to fit the loss GMM, got 1$"),
]


def _call(function, overrides):
    kwargs = {"labels": GOOD_LABELS, "pred_probs": GOOD_PROBS, **overrides}
    labels, pred_probs = kwargs.pop("labels"), kwargs.pop("pred_probs")
    return function(labels, pred_probs, **kwargs)


@pytest.mark.parametrize("function", [label_quality_scores, find_label_issues])
@pytest.mark.parametrize("overrides, message", BAD_INPUTS)
def test_bad_input_is_named_in_one_line(function, overrides, message):
    with pytest.raises(DmkerasError, match=message) as raised:
        _call(function, overrides)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"threshold": 1.5}, r"^threshold must lie in \[0, 1\], got 1\.5$"),
        ({"threshold": -0.1}, r"^threshold must lie in \[0, 1\], got -0\.1$"),
        ({"threshold": "half"}, r"^threshold must be a number in \[0, 1\], got 'half'$"),
        ({"return_indices_ranked_by": "confidence"},
         r"^unknown return_indices_ranked_by 'confidence'; expected None or one of: self_confidence, clean_probability$"),
    ],
)
def test_bad_find_label_issues_option_is_named_in_one_line(overrides, message):
    with pytest.raises(DmkerasError, match=message):
        _call(find_label_issues, overrides)


def test_the_functions_are_top_level_names_of_the_package():
    import dmkeras

    assert dmkeras.find_label_issues is find_label_issues and dmkeras.label_quality_scores is label_quality_scores
    assert {"find_label_issues", "label_quality_scores", "DivideMix"} <= set(dmkeras.__all__)
