"""Which labels are wrong? DivideMix's co-divide behind a cleanlab-shaped, NumPy-in / NumPy-out API.

`label_quality_scores` is the counterpart of ``cleanlab.rank.get_label_quality_scores`` and
`find_label_issues` of ``cleanlab.filter.find_label_issues``; both take the given labels and
either predicted probabilities (as cleanlab) or the logits of DivideMix's nets, and score every
sample the way DivideMix divides its training set (`dmkeras.division`):

1. the per-sample cross-entropy against the given label,
2. min-max normalised to [0, 1],
3. a 2-component 1-D Gaussian mixture fitted to it (`dmkeras.gmm`, scikit-learn's algorithm), and
4. the clean probability: the posterior of the low-loss component.

A label is flagged as an issue when its clean probability is at most the threshold: the samples
DivideMix would not put in its labeled set (which keeps ``clean_prob > p_threshold``).
"""

import dataclasses

import numpy as np

from dmkeras import division
from dmkeras.errors import DmkerasError

__all__ = ["label_quality_scores", "find_label_issues", "RANKINGS", "PROB_SUM_TOLERANCE"]

RANKINGS = ("self_confidence", "clean_probability")
"""The accepted values of `find_label_issues`'s ``return_indices_ranked_by`` (besides None)."""

PROB_SUM_TOLERANCE = 1e-3
"""How far a row of ``pred_probs`` may sum from 1."""

# The smallest normal float32: a probability from a float32 softmax loses nothing it still carries,
# and one that underflowed to 0 gets the largest loss a float32 softmax can express (-log of it,
# about 87.3) instead of inf.
_PROB_FLOOR = float(np.finfo(np.float32).tiny)


@dataclasses.dataclass(frozen=True)
class _Inputs:
    """Checked inputs: exactly one of pred_probs / logits_per_net is set."""

    labels: np.ndarray  # (N,) int64 in [0, num_classes)
    num_classes: int
    pred_probs: np.ndarray | None  # (N, K) float64
    logits_per_net: tuple[np.ndarray, ...] | None  # each (N, K) float64


# ------------------------------------------------------------------------------------ the maths


def given_label_cross_entropy(pred_probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """-log p[i, labels[i]] of every row, with p clipped below at the smallest normal float32."""
    given = pred_probs[np.arange(len(labels)), labels]
    return -np.log(np.maximum(given, _PROB_FLOOR))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (shifted by the row maximum, so large logits do not overflow)."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _clean_probability_of_losses(losses, labels, num_classes, strategy) -> np.ndarray:
    """One net's clean probabilities from its raw per-sample losses, as `audit.score_samples`."""
    normalized = division.min_max_normalize(losses)
    clean_prob, _ = division.clean_probability(normalized, labels, num_classes, strategy)
    return clean_prob


def _per_net_losses(inputs: _Inputs) -> list[np.ndarray]:
    """The per-sample cross-entropy each net (or the one pred_probs) gives the given labels."""
    if inputs.pred_probs is not None:
        return [given_label_cross_entropy(inputs.pred_probs, inputs.labels)]
    return [division.per_sample_cross_entropy(logits, inputs.labels) for logits in inputs.logits_per_net]


def _clean_probability(inputs: _Inputs, strategy: str) -> np.ndarray:
    """The mean over nets of each net's clean probability (one net for pred_probs)."""
    per_net = [
        _clean_probability_of_losses(losses, inputs.labels, inputs.num_classes, strategy)
        for losses in _per_net_losses(inputs)
    ]
    return np.mean(np.stack(per_net), axis=0)


def _self_confidence(inputs: _Inputs) -> np.ndarray:
    """The probability of the given label: from pred_probs, or from the mean of the nets' softmax."""
    if inputs.pred_probs is not None:
        probs = inputs.pred_probs
    else:
        probs = np.mean(np.stack([softmax(logits) for logits in inputs.logits_per_net]), axis=0)
    return probs[np.arange(len(inputs.labels)), inputs.labels]


def _ranked(indices: np.ndarray, key: np.ndarray) -> np.ndarray:
    """`indices` ordered by ascending key[indices]; a stable sort keeps ties in index order."""
    return indices[np.argsort(key[indices], kind="stable")]


# ------------------------------------------------------------------------------- input checks


def _check_one_source(pred_probs, logits_per_net) -> None:
    if pred_probs is not None and logits_per_net is not None:
        raise DmkerasError("pass exactly one of pred_probs and logits_per_net (got both)")
    if pred_probs is None and logits_per_net is None:
        raise DmkerasError("pass exactly one of pred_probs and logits_per_net (got neither)")


def _as_2d_finite(values, name: str) -> np.ndarray:
    """A float64 (N, K) array with only finite entries."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DmkerasError(f"{name} must be a numeric (N, K) array: {exc}") from None
    if array.ndim != 2:
        raise DmkerasError(f"{name} must be a 2-D (N, K) array, got shape {array.shape}")
    bad_rows = np.flatnonzero(~np.all(np.isfinite(array), axis=1))
    if bad_rows.size:
        count = int((~np.isfinite(array)).sum())
        raise DmkerasError(f"{name} contains {count} non-finite value(s) (NaN or inf), first in row {int(bad_rows[0])}")
    return array


def _check_pred_probs(pred_probs) -> np.ndarray:
    probs = _as_2d_finite(pred_probs, "pred_probs")
    negative_rows = np.flatnonzero((probs < 0).any(axis=1))
    if negative_rows.size:
        raise DmkerasError(
            f"pred_probs must be non-negative: {int((probs < 0).sum())} negative value(s), "
            f"first in row {int(negative_rows[0])}"
        )
    sums = probs.sum(axis=1)
    off_rows = np.flatnonzero(np.abs(sums - 1.0) > PROB_SUM_TOLERANCE)
    if off_rows.size:
        row = int(off_rows[0])
        raise DmkerasError(
            f"pred_probs rows must sum to 1 (within {PROB_SUM_TOLERANCE:g}): {off_rows.size} do not, "
            f"row {row} sums to {sums[row]:.6g}"
        )
    return probs


def _check_logits_per_net(logits_per_net) -> tuple[np.ndarray, ...]:
    if isinstance(logits_per_net, (str, bytes, dict)) or not hasattr(logits_per_net, "__iter__"):
        raise DmkerasError(
            f"logits_per_net must be a list of (N, K) logits arrays, one per net, got {type(logits_per_net).__name__}"
        )
    nets = tuple(_as_2d_finite(logits, f"logits_per_net[{i}]") for i, logits in enumerate(logits_per_net))
    if not nets:
        raise DmkerasError("logits_per_net is empty: pass one (N, K) logits array per net")
    for i, logits in enumerate(nets[1:], start=1):
        if logits.shape != nets[0].shape:
            raise DmkerasError(
                f"the nets' logits differ in shape: logits_per_net[0] is {nets[0].shape}, "
                f"logits_per_net[{i}] is {logits.shape}"
            )
    return nets


def _check_ranking(return_indices_ranked_by) -> None:
    if return_indices_ranked_by is not None and return_indices_ranked_by not in RANKINGS:
        raise DmkerasError(
            f"unknown return_indices_ranked_by {return_indices_ranked_by!r}; "
            f"expected None or one of: {', '.join(RANKINGS)}"
        )


def _checked_inputs(labels, pred_probs, logits_per_net, strategy, class_floor, num_classes) -> _Inputs:
    """Every check both public functions share, cheapest first; the arrays as float64 / int64."""
    _check_one_source(pred_probs, logits_per_net)
    division._check_strategy(strategy)
    division._check_unit_interval(class_floor, "class_floor")
    num_classes = division._check_num_classes(num_classes)
    if pred_probs is not None:
        probs, nets, source = _check_pred_probs(pred_probs), None, "pred_probs"
        n, k = probs.shape
    else:
        probs, nets, source = None, _check_logits_per_net(logits_per_net), "logits_per_net"
        n, k = nets[0].shape
    if num_classes is not None and num_classes != k:
        raise DmkerasError(f"num_classes is {num_classes} but {source} has {k} columns")
    label_array = np.asarray(labels)
    if label_array.ndim == 1 and len(label_array) != n:
        raise DmkerasError(f"labels has {len(label_array)} entries but {source} has {n} rows")
    # 1-D, integer class indices, inside [0, K): the division's own label check
    label_array = division._check_labels(label_array, n, k, strategy)
    if n < 2:
        raise DmkerasError(f"need at least 2 samples to fit the loss GMM, got {n}")
    return _Inputs(labels=label_array, num_classes=k, pred_probs=probs, logits_per_net=nets)


# ---------------------------------------------------------------------------------- public API


def label_quality_scores(
    labels, pred_probs=None, *, logits_per_net=None, strategy="gmm", class_floor=0.0, num_classes=None
) -> np.ndarray:
    """DivideMix's clean probability of every sample's given label (higher = more likely correct).

    The DivideMix counterpart of ``cleanlab.rank.get_label_quality_scores``: the per-sample
    cross-entropy of the given label is min-max normalised to [0, 1], a 2-component Gaussian
    mixture is fitted to it (`dmkeras.gmm.fit_loss_gmm`, scikit-learn's algorithm) and the score
    is the posterior of the low-loss component, exactly what `dmkeras.division.divide` returns as
    ``clean_prob``.

    Parameters
    ----------
    labels : array_like of int, shape (N,)
        The given (possibly noisy) label of every sample, in ``[0, K)``. Integer dtype, or floats
        with integral values.
    pred_probs : array_like of float, shape (N, K), optional
        Predicted class probabilities (ideally out-of-sample, as for cleanlab): non-negative, every
        row summing to 1 within `PROB_SUM_TOLERANCE`. The loss is ``-log pred_probs[i, labels[i]]``,
        the probability clipped below at the smallest normal float32 (an exact 0 gives a loss of
        about 87.3 rather than inf). Pass exactly one of `pred_probs` and `logits_per_net`.
    logits_per_net : sequence of array_like of float, each shape (N, K), optional
        The logits of each net (e.g. DivideMix's two nets, in eval mode, without augmentation),
        all of the same shape. Each net's clean probability is computed from its own logits
        (loss ``logsumexp(z) - z[label]``) and the result is their mean, as `dmkeras.audit`
        scores a run.
    strategy : {"gmm", "per_class_gmm", "class_floor"}, default "gmm"
        The division strategy (`dmkeras.division.DIVISIONS`). "gmm" and "class_floor" fit one
        mixture to all samples (so give the same scores); "per_class_gmm" fits one per
        given-label class, on the globally normalised losses.
    class_floor : float in [0, 1], default 0.0
        Only validated here: the floor decides which samples `find_label_issues` keeps, not the
        probabilities. Accepted so both functions take the same keywords.
    num_classes : int, optional
        K, if you want it checked against the number of columns.

    Returns
    -------
    numpy.ndarray of float64, shape (N,)
        The clean probability of every sample, in [0, 1]. All losses equal (no spread) gives 1.0
        everywhere: no evidence of noise.

    Raises
    ------
    DmkerasError
        Both or neither of `pred_probs` and `logits_per_net`; labels not 1-D integers, outside
        ``[0, K)`` or of another length than the probabilities / logits; `pred_probs` not 2-D,
        negative or with rows not summing to 1; NaN or inf in the probabilities or logits; nets'
        logits of different shapes; an unknown strategy; `class_floor` outside [0, 1];
        `num_classes` not K; fewer than 2 samples.

    See Also
    --------
    find_label_issues : the samples whose clean probability is at most a threshold.
    dmkeras.division.divide : the same computation on losses, as training runs it.

    Notes
    -----
    The min-max normalisation (DivideMix's) makes the scores depend on the largest loss: a few
    extreme losses squeeze all the others towards 0.

    Examples
    --------
    >>> import numpy as np
    >>> from dmkeras.label_issues import label_quality_scores
    >>> pred_probs = np.array([[0.9, 0.1]] * 4 + [[0.1, 0.9]] * 4 + [[0.95, 0.05]] * 2)
    >>> labels = np.array([0] * 4 + [1] * 4 + [1] * 2)  # the last two look mislabeled
    >>> np.round(label_quality_scores(labels, pred_probs), 3)
    array([1., 1., 1., 1., 1., 1., 1., 1., 0., 0.])
    """
    inputs = _checked_inputs(labels, pred_probs, logits_per_net, strategy, class_floor, num_classes)
    return _clean_probability(inputs, strategy)


def find_label_issues(
    labels,
    pred_probs=None,
    *,
    logits_per_net=None,
    strategy="gmm",
    threshold=0.5,
    class_floor=0.0,
    num_classes=None,
    return_indices_ranked_by=None,
) -> np.ndarray:
    """Which given labels are likely wrong, by DivideMix's co-divide.

    The DivideMix counterpart of ``cleanlab.filter.find_label_issues``: a sample is flagged when
    its clean probability (`label_quality_scores`) is at most `threshold`, i.e. when DivideMix
    would leave it out of its labeled set (which keeps ``clean_prob > p_threshold``). With the
    class-aware strategies, the samples a class keeps to reach its floor (the class's highest
    clean probabilities, `dmkeras.division.select`) are not flagged.

    Parameters
    ----------
    labels : array_like of int, shape (N,)
        The given labels, in ``[0, K)``.
    pred_probs : array_like of float, shape (N, K), optional
        Predicted class probabilities (see `label_quality_scores`). Exactly one of `pred_probs`
        and `logits_per_net`.
    logits_per_net : sequence of array_like of float, each shape (N, K), optional
        One logits array per net; the clean probability is the mean of the nets'.
    strategy : {"gmm", "per_class_gmm", "class_floor"}, default "gmm"
        The division strategy (`dmkeras.division.DIVISIONS`).
    threshold : float in [0, 1], default 0.5
        DivideMix's ``p_threshold``: flag ``clean_prob <= threshold``.
    class_floor : float in [0, 1], default 0.0
        per_class_gmm / class_floor: every given-label class keeps (does not flag) at least
        ``ceil(class_floor * n_c)`` of its samples (per_class_gmm at least 1).
    num_classes : int, optional
        K, if you want it checked against the number of columns.
    return_indices_ranked_by : {None, "self_confidence", "clean_probability"}, default None
        None returns the boolean mask. Otherwise the indices of the flagged samples, most likely
        wrong first: "self_confidence" by the probability of the given label (from `pred_probs`,
        or from the mean of the nets' softmax), lowest first; "clean_probability" by the clean
        probability, lowest first. Ties keep index order.

    Returns
    -------
    numpy.ndarray
        With ``return_indices_ranked_by=None``: bool, shape (N,), True where the label is likely
        wrong. Otherwise int64, shape (number flagged,): the flagged indices in ranking order.

    Raises
    ------
    DmkerasError
        As `label_quality_scores`, and: `threshold` outside [0, 1]; an unknown
        `return_indices_ranked_by`.

    See Also
    --------
    label_quality_scores : the clean probability of every sample.

    Examples
    --------
    >>> import numpy as np
    >>> from dmkeras.label_issues import find_label_issues
    >>> pred_probs = np.array([[0.9, 0.1]] * 4 + [[0.1, 0.9]] * 4 + [[0.95, 0.05], [0.8, 0.2]])
    >>> labels = np.array([0] * 4 + [1] * 4 + [1] * 2)
    >>> find_label_issues(labels, pred_probs, return_indices_ranked_by="self_confidence")
    array([8, 9])
    """
    division._check_unit_interval(threshold, "threshold")
    _check_ranking(return_indices_ranked_by)
    inputs = _checked_inputs(labels, pred_probs, logits_per_net, strategy, class_floor, num_classes)
    clean_prob = _clean_probability(inputs, strategy)
    kept = division.select(clean_prob, inputs.labels, threshold, strategy=strategy, class_floor=class_floor)
    flagged = ~kept
    if return_indices_ranked_by is None:
        return flagged
    key = _self_confidence(inputs) if return_indices_ranked_by == "self_confidence" else clean_prob
    return _ranked(np.flatnonzero(flagged), key)
