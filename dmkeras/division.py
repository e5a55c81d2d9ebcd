"""Co-divide: from per-sample losses to a labeled (probably clean) / unlabeled split.

Follows the reference's `eval_train`: per-sample cross-entropy in eval mode, min-max normalised,
optionally averaged over the last K epochs, a 2-component GMM, the clean probability is the
posterior of the low-mean component, and `labeled = clean_prob > p_threshold`.
"""

import collections
import dataclasses

import numpy as np

from dmkeras import gmm


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


@dataclasses.dataclass
class Division:
    """One net's division of the training set."""

    losses: np.ndarray  # what the GMM was fitted to (normalised, possibly averaged)
    clean_prob: np.ndarray  # w_i, posterior of the low-loss component
    labeled: np.ndarray  # bool mask: clean_prob > p_threshold
    fit: gmm.GMMFit

    @property
    def labeled_indices(self) -> np.ndarray:
        return np.flatnonzero(self.labeled)

    @property
    def unlabeled_indices(self) -> np.ndarray:
        return np.flatnonzero(~self.labeled)


def divide(losses: np.ndarray, p_threshold: float) -> Division:
    """Fit the loss GMM and threshold the clean probability."""
    fit, clean_prob = gmm.fit_loss_gmm(losses)
    return Division(losses=np.asarray(losses), clean_prob=clean_prob, labeled=clean_prob > p_threshold, fit=fit)


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
        "auc": roc_auc(division.clean_prob, is_clean),
        "precision": float((labeled & is_clean).sum() / n_labeled) if n_labeled else float("nan"),
        "recall": float((labeled & is_clean).sum() / is_clean.sum()) if is_clean.any() else float("nan"),
    }
