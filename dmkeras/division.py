"""Co-divide: from per-sample losses to a labeled (probably clean) / unlabeled split.

Follows the reference's `eval_train`: per-sample cross-entropy in eval mode, min-max normalised,
optionally averaged over the last K epochs, a 2-component GMM, the clean probability is the
posterior of the low-mean component, and `labeled = clean_prob > p_threshold`.

Division strategies (`DIVISIONS`), shared by training (`divide`) and the audit's threshold sweep
(`select`):

* ``gmm`` -- the reference: one GMM over all losses, one threshold for every sample.
* ``per_class_gmm`` -- one GMM per given-label class, fitted on that class's losses only (a class
  whose losses sit above the others', e.g. under asymmetric noise, is not emptied by a global
  fit); every class keeps at least one sample (more with `class_floor`).
* ``class_floor`` -- the reference's probabilities, but every class keeps at least
  ``ceil(class_floor * n_c)`` samples (its highest clean probabilities).
* ``unicon`` -- UNICON's uniform selection (Karim et al., CVPR 2022): not from one net's losses
  but from the Jensen-Shannon divergence between the two nets' mean prediction and the given
  label (`jensen_shannon_divergence`, `selection_ratio`, `uniform_selection`, `unicon_divide`);
  the same number of samples of every given-label class is labeled, and both nets train on the
  same selection. The loss-based functions (`clean_probability`, `select`, `divide`, hence the
  audit and `find_label_issues`) take the `LOSS_DIVISIONS` only.
"""

import collections
import dataclasses
import math

import numpy as np

from dmkeras import checks, gmm
from dmkeras.errors import DmkerasError

DIVISIONS = ("gmm", "per_class_gmm", "class_floor", "unicon")
"""The accepted division strategies (see the module docstring)."""

LOSS_DIVISIONS = DIVISIONS[:3]
"""The strategies that divide from one net's per-sample losses (all but unicon)."""

UNICON_TAU = 5.0  # UNICON's --tau, the filtering coefficient of `selection_ratio`
UNICON_D_U = 0.7  # UNICON's --d_u: above this mean JSD the threshold moves towards the minimum

_CLASS_AWARE = ("per_class_gmm", "class_floor")


def per_sample_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """CE of every row against its (given) label, in float64: logsumexp(z) - z[y]."""
    z = np.asarray(logits, np.float64)
    top = z.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(z - top).sum(axis=1))
    return log_norm - z[np.arange(len(z)), np.asarray(labels)]


def min_max_normalize(losses: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; all-equal losses (no spread to normalise) become all zeros."""
    losses = np.asarray(losses, np.float64)
    spread = losses.max() - losses.min()
    if spread <= 0:
        return np.zeros_like(losses)
    return (losses - losses.min()) / spread


class LossHistory:
    """The last `size` normalised loss vectors of one net (the reference averages 5 at r=0.9)."""

    def __init__(self, size: int):
        self._history = collections.deque(maxlen=size)

    def add(self, normalized_losses: np.ndarray) -> np.ndarray:
        """Record this epoch's losses and return what the GMM should fit: their running mean."""
        self._history.append(np.asarray(normalized_losses, np.float64))
        return np.mean(np.stack(self._history), axis=0)

    @property
    def entries(self) -> list[np.ndarray]:
        """The recorded loss vectors, oldest first (what a checkpoint saves)."""
        return list(self._history)

    @entries.setter
    def entries(self, values) -> None:
        self._history.clear()
        self._history.extend(np.asarray(v, np.float64) for v in values)


@dataclasses.dataclass
class Division:
    """One net's division of the training set."""

    losses: np.ndarray  # what the GMM was fitted to (normalised, possibly averaged)
    clean_prob: np.ndarray  # w_i, posterior of the low-loss component
    labeled: np.ndarray  # bool mask: clean_prob > p_threshold (plus class floors, see `select`)
    fit: gmm.GMMFit | None  # the global fit (gmm, class_floor); None for per_class_gmm
    class_fits: dict | None = None  # per_class_gmm: given-label class -> GMMFit of that class
    score: np.ndarray | None = None  # what ranks the samples for the AUC when not clean_prob (unicon: -JSD)

    @property
    def labeled_indices(self) -> np.ndarray:
        return np.flatnonzero(self.labeled)

    @property
    def unlabeled_indices(self) -> np.ndarray:
        return np.flatnonzero(~self.labeled)


def _check_strategy(strategy) -> str:
    """A loss-based strategy; unicon is named apart, since it needs both nets' predictions."""
    if strategy == "unicon":
        raise DmkerasError(
            "division strategy 'unicon' selects from both nets' predictions, not from losses: use "
            f"dmkeras.division.unicon_divide (loss-based strategies: {', '.join(LOSS_DIVISIONS)})"
        )
    if not isinstance(strategy, str) or strategy not in LOSS_DIVISIONS:
        raise DmkerasError(f"unknown division strategy {strategy!r}; expected one of: {', '.join(LOSS_DIVISIONS)}")
    return strategy


def _check_unit_interval(value, name) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DmkerasError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if isinstance(value, bool) or not 0.0 <= number <= 1.0:  # also rejects NaN
        raise DmkerasError(f"{name} must lie in [0, 1], got {value!r}")
    return number


def _check_num_classes(num_classes):
    return None if num_classes is None else checks.check_num_classes(num_classes)


def _check_labels(labels, n, num_classes, strategy) -> np.ndarray | None:
    """Labels as an int64 (n,) array; None when not given and the strategy does not need them."""
    if labels is None:
        if strategy in _CLASS_AWARE:
            raise DmkerasError(f"division strategy {strategy!r} needs the given labels (labels=None)")
        return None
    return checks.check_class_labels(labels, num_classes, count=n, count_what=f"there are {n} losses / clean probabilities")


def _degenerate_fit(value: float, reg_covar: float = 5e-4) -> gmm.GMMFit:
    """What `gmm.fit_loss_gmm` returns for all-equal values, for a class with a single sample."""
    arrays = {
        "means": np.array([value, value], np.float64),
        "variances": np.array([reg_covar, reg_covar], np.float64),
        "weights": np.array([1.0, 0.0], np.float64),
    }
    for a in arrays.values():
        a.setflags(write=False)
    return gmm.GMMFit(
        n_iter=0, converged=True, lower_bound=-0.5 * (math.log(2.0 * math.pi) + math.log(reg_covar)), **arrays
    )


def clean_probability(losses, labels=None, num_classes=None, strategy="gmm") -> tuple[np.ndarray, object]:
    """The clean probability of every sample and the fit(s) behind it.

    gmm: the reference, one GMM over all losses -> ``(prob, GMMFit)``.
    per_class_gmm: one GMM per given-label class, fitted on that class's losses only (not
        re-normalised) -> ``(prob, {class: GMMFit})`` with a key for every class present; a class
        with fewer than 2 samples, or whose losses are all equal, gets probability 1.0 for its
        samples (no evidence of noise) and a degenerate fit, as `gmm.fit_loss_gmm` gives for
        all-equal values.
    class_floor: the same probabilities and fit as gmm (the class-awareness is in `select`).

    Labels, when given, must be integers in [0, num_classes) (num_classes only bounds them).

    Raises:
      DmkerasError: unknown strategy, missing or bad labels, bad losses.
    """
    strategy = _check_strategy(strategy)
    num_classes = _check_num_classes(num_classes)
    x = gmm._as_values(losses, "losses")
    labels = _check_labels(labels, len(x), num_classes, strategy)
    if strategy != "per_class_gmm":
        fit, prob = gmm.fit_loss_gmm(x)
        return prob, fit
    prob = np.ones(len(x), np.float64)
    fits = {}
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) < 2:
            fits[int(c)] = _degenerate_fit(float(x[idx[0]]))
            continue
        fits[int(c)], prob[idx] = gmm.fit_loss_gmm(x[idx])  # all-equal -> degenerate fit, prob 1.0
    return prob, fits


def _floor_count(fraction: float, n: np.ndarray) -> np.ndarray:
    """ceil(fraction * n) per class, without float noise (0.3 * 10 is 3.0000000000000004)."""
    return np.ceil(np.round(fraction * n.astype(np.float64), 9)).astype(np.int64)


def select(clean_prob, labels=None, threshold=0.5, *, strategy="gmm", class_floor=0.0, inclusive=False) -> np.ndarray:
    """Which samples are kept (labeled): a bool mask.

    Every strategy keeps ``clean_prob > threshold`` (``>=`` when `inclusive`, so that 0.0 keeps
    everything in a sweep); then
    per_class_gmm: every class present in `labels` keeps at least ``max(1, ceil(class_floor * n_c))``
        samples;
    class_floor: every class keeps at least ``ceil(class_floor * n_c)`` samples (at least 1 when
        class_floor > 0; class_floor 0 is the same as gmm);
    gmm: no floor (labels and class_floor are only validated, not used).
    The samples added to reach a floor are the class's highest clean probabilities, ties broken
    by the lower index (deterministic); since the samples over the threshold are the highest, a
    topped-up class keeps exactly its floor.

    Raises:
      DmkerasError: unknown strategy, labels missing (class-aware strategies) or of the wrong
        length, threshold or class_floor outside [0, 1], non-finite or non-1-D clean_prob.
    """
    strategy = _check_strategy(strategy)
    threshold = _check_unit_interval(threshold, "threshold")
    class_floor = _check_unit_interval(class_floor, "class_floor")
    prob = np.asarray(clean_prob, np.float64)
    if prob.ndim != 1:
        raise DmkerasError(f"clean_prob must be 1-D (got shape {prob.shape})")
    if not np.all(np.isfinite(prob)):
        raise DmkerasError("clean_prob contains non-finite values (NaN or inf)")
    labels = _check_labels(labels, len(prob), None, strategy)
    kept = prob >= threshold if inclusive else prob > threshold
    if strategy == "gmm" or len(prob) == 0:
        return kept
    sizes = np.bincount(labels)
    floors = _floor_count(class_floor, sizes)
    if strategy == "per_class_gmm" or class_floor > 0:
        floors = np.maximum(floors, 1)
    floors = np.minimum(floors, sizes)
    # rank of every sample inside its class: highest probability first, then lowest index
    index = np.arange(len(prob))
    order = np.lexsort((index, -prob, labels))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.empty(len(prob), np.int64)
    rank[order] = index - starts[labels[order]]
    return kept | (rank < floors[labels])


def divide(
    losses: np.ndarray, p_threshold: float, *, strategy="gmm", labels=None, num_classes=None, class_floor=0.0
) -> Division:
    """Fit the loss GMM(s) and threshold the clean probability (strict ``>``, as the reference).

    strategy (one of `DIVISIONS`), labels, num_classes and class_floor as in `clean_probability`
    and `select`. `Division.fit` is the global GMMFit for gmm / class_floor; for per_class_gmm it
    is None and `Division.class_fits` holds the fit of every class.

    Raises:
      DmkerasError: as `clean_probability` and `select`.
    """
    strategy = _check_strategy(strategy)
    _check_unit_interval(p_threshold, "p_threshold")
    _check_unit_interval(class_floor, "class_floor")
    clean_prob, fits = clean_probability(losses, labels, num_classes, strategy)
    labeled = select(clean_prob, labels, p_threshold, strategy=strategy, class_floor=class_floor)
    per_class = strategy == "per_class_gmm"
    return Division(
        losses=np.asarray(losses),
        clean_prob=clean_prob,
        labeled=labeled,
        fit=None if per_class else fits,
        class_fits=fits if per_class else None,
    )


# -- UNICON's uniform selection ---------------------------------------------------------------------
# Karim et al., "UniCon: Combating Label Noise Through Uniform Selection and Contrastive Learning"
# (CVPR 2022), section 3.1 ("uniform selection"), as their Train_cifar.py and dataloader_cifar.py
# compute it (the equation numbers of the paper were not checked here: the code is what produced
# the published numbers, so it is followed, and every step names what it follows).

_JSD_EPS = 1e-10  # their kl_divergence adds 1e-10 to both sides of the ratio


def jensen_shannon_divergence(p, q) -> np.ndarray:
    """Row-wise JSD(p, q) = KL(p || m) / 2 + KL(q || m) / 2 with m = (p + q) / 2, natural log.

    UNICON's `Jensen_Shannon` (Train_cifar.py): KL(p || m) = sum p log((p + 1e-10) / (m + 1e-10)),
    in nats, so the divergence lies in [0, ln 2] (scipy's `jensenshannon(p, q) ** 2` with its
    default base e is the same quantity). Terms with p = 0 contribute 0.
    """
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    m = (p + q) / 2.0

    def kl(a):
        return np.sum(a * np.log((a + _JSD_EPS) / (m + _JSD_EPS)), axis=-1)

    return 0.5 * kl(p) + 0.5 * kl(q)


def label_divergence(probs1, probs2, labels, num_classes=None) -> np.ndarray:
    """UNICON's per-sample criterion (`Calculate_JSD`): the JSD between the two nets' mean
    prediction (probs1 + probs2) / 2 and the one-hot given label. Low = the nets agree with the
    label; a sample the nets put wholly on another class gets ln 2."""
    probs1, probs2 = np.asarray(probs1, np.float64), np.asarray(probs2, np.float64)
    if probs1.ndim != 2 or probs1.shape != probs2.shape:
        raise DmkerasError(f"the two nets' predictions must be (N, C) arrays of one shape, got {probs1.shape} and {probs2.shape}")
    classes = probs1.shape[1] if num_classes is None else checks.check_num_classes(num_classes)
    labels = checks.check_class_labels(labels, classes, count=len(probs1), count_what=f"there are {len(probs1)} predictions")
    return jensen_shannon_divergence((probs1 + probs2) / 2.0, np.eye(probs1.shape[1])[labels])


def selection_ratio(jsd, tau=UNICON_TAU, d_u=UNICON_D_U) -> float:
    """The fraction of samples to label (their SR, Train_cifar.py's main loop): the threshold is
    the mean JSD; when that mean exceeds d_u it moves towards the minimum,
    threshold - (threshold - min) / tau; SR = the fraction of samples strictly below it.

    With their JSD in nats (at most ln 2 = 0.693) and d_u = 0.7, the move never happens: the
    threshold is the mean. It is kept for other d_u.
    """
    jsd = np.asarray(jsd, np.float64)
    if jsd.size == 0:
        return 0.0
    threshold = jsd.mean()
    if threshold > d_u:
        threshold = threshold - (threshold - jsd.min()) / tau
    return float(np.mean(jsd < threshold))


def uniform_selection(jsd, labels, ratio, num_classes=None) -> np.ndarray:
    """A bool mask: the same number of samples of every given-label class, the lowest JSD first.

    As their dataloader's "labeled" mode: class_len = int(ratio * N / C) per class, its samples
    sorted by JSD ascending; a class with fewer samples gives all of them. Ties are broken by
    the lower index (a stable sort; theirs, numpy's default quicksort, is not specified).
    C is num_classes (default: the largest label + 1), as their num_class.
    """
    jsd = np.asarray(jsd, np.float64)
    labels = np.asarray(labels, np.int64)
    classes = int(num_classes or (labels.max() + 1 if len(labels) else 1))
    per_class = int(ratio * len(jsd) / classes)
    index = np.arange(len(jsd))
    order = np.lexsort((index, jsd, labels))  # by class, then JSD, then index
    sizes = np.bincount(labels, minlength=classes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.empty(len(jsd), np.int64)
    rank[order] = index - starts[labels[order]]
    return rank < per_class


def unicon_clean_weight(jsd) -> np.ndarray:
    """The w of label co-refinement for the selected samples: 1 - JSD, with JSD below 0.5 taken
    as 0 (their `probability[probability < 0.5] = 0; 1 - probability`)."""
    jsd = np.asarray(jsd, np.float64)
    return 1.0 - np.where(jsd < 0.5, 0.0, jsd)


def unicon_divide(probs1, probs2, labels, *, num_classes=None, tau=UNICON_TAU, d_u=UNICON_D_U) -> Division:
    """UNICON's division from both nets' softmax outputs on the training set (eval mode, test-time
    transform): `label_divergence`, `selection_ratio`, `uniform_selection`, `unicon_clean_weight`.

    `Division.losses` holds the JSD, `clean_prob` the co-refinement weight (1.0 for every sample
    with JSD < 0.5; unlabeled samples get theirs too, unused), `score` -JSD, `fit` None. Both nets train on
    this one division (their main loop gives each net the selection of the same two nets).
    """
    jsd = label_divergence(probs1, probs2, labels, num_classes)
    ratio = selection_ratio(jsd, tau, d_u)
    classes = num_classes or np.asarray(probs1).shape[1]
    labeled = uniform_selection(jsd, labels, ratio, classes)
    # the weight ties at 1 below JSD 0.5, so the AUC ranks by the JSD itself
    return Division(losses=jsd, clean_prob=unicon_clean_weight(jsd), labeled=labeled, fit=None, score=-jsd)


def min_class_labeled_fraction(labeled: np.ndarray, labels: np.ndarray, num_classes: int | None = None) -> float:
    """The smallest fraction of a given-label class that is labeled (over the classes that have
    samples): 0 when a whole class dropped out of the labeled set."""
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=num_classes or 0)
    kept = np.bincount(labels[np.asarray(labeled, bool)], minlength=len(counts))
    present = counts > 0
    return float((kept[present] / counts[present]).min())


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of `scores` for the boolean `positive` (Mann-Whitney, ties halved).

    NaN when one of the classes is absent.
    """
    scores = np.asarray(scores, np.float64)
    positive = np.asarray(positive, bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), np.float64)
    sorted_scores = scores[order]
    # average ranks over ties
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(scores)]])
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + e + 1) / 2.0  # ranks are 1-based
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def division_quality(division: Division, is_clean: np.ndarray) -> dict:
    """How well the division finds the truly clean samples (when the true labels are known).

    auc: of the clean probability against the clean mask; precision: fraction of the labeled set
    that is truly clean; recall: fraction of the truly clean samples that are labeled.
    """
    is_clean = np.asarray(is_clean, bool)
    labeled = division.labeled
    n_labeled = int(labeled.sum())
    return {
        "auc": roc_auc(division.clean_prob if division.score is None else division.score, is_clean),
        "precision": float((labeled & is_clean).sum() / n_labeled) if n_labeled else float("nan"),
        "recall": float((labeled & is_clean).sum() / is_clean.sum()) if is_clean.any() else float("nan"),
    }
