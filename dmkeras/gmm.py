"""Two-component 1-D Gaussian mixture on per-sample losses (DivideMix co-divide).

DivideMix fits ``sklearn.mixture.GaussianMixture(n_components=2, max_iter=10,
tol=1e-2, reg_covar=5e-4)`` to the min-max normalised per-sample losses and
takes, as each sample's *clean probability*, the posterior of the component
with the smaller mean.  This module reproduces scikit-learn's algorithm in
TensorFlow (float64, one XLA-compiled ``tf.function``):

* initialisation as scikit-learn's default ``init_params="kmeans"``: hard
  2-means (Lloyd) clustering of the values, started from the minimum and the
  maximum and iterated until the assignments stop changing (at most
  ``KMEANS_MAX_ITER`` rounds), followed by an M-step on those hard
  responsibilities;
* M-step as ``sklearn.mixture._gaussian_mixture._estimate_gaussian_parameters``
  (``nk = sum(resp) + 10 * eps``; ``mean = resp.T @ x / nk``;
  ``var = sum(resp * (x - mean)**2) / nk + reg_covar``; ``weight = nk / n``);
* E-step: ``log N(x; mean, var) + log weight`` normalised with logsumexp; the
  lower bound is the mean log-sum-exp (scikit-learn's ``log_prob_norm``);
* EM loop: ``for n_iter in 1..max_iter: E; M; stop when |lower bound change|
  < tol`` (the lower bound starts at -inf), then a final E-step with the final
  parameters gives the posteriors (what ``predict_proba`` returns).

Components are sorted so that component 0 is always the low-mean ("clean") one.

Degenerate input: when every value is the same (only one distinct value) there
is no evidence of noisy samples, so the fit is *degenerate* by design: both
means equal that value, both variances equal ``reg_covar``, the weights are
``(1, 0)``, ``n_iter == 0``, ``converged`` is True, and the clean probability
is 1.0 for every sample (no NaN).

``fit_loss_gmm`` is the NumPy-facing entry point; ``fit_gmm_tensor`` is the
tensor-level core (usable inside other ``tf.function`` graphs) and
``gmm_em`` the same computation as plain TensorFlow ops, not wrapped in a
``tf.function``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from dmkeras.errors import DmkerasError

__all__ = [
    "GMMFit",
    "KMEANS_MAX_ITER",
    "fit_loss_gmm",
    "fit_gmm_tensor",
    "gmm_em",
    "e_step",
    "m_step",
]

KMEANS_MAX_ITER = 50
"""Cap on Lloyd iterations of the k-means initialisation."""

_EPS = float(np.finfo(np.float64).eps)
_DTYPE = tf.float64


# --------------------------------------------------------------------------
# Tensor-level core (plain TF ops; float64)
# --------------------------------------------------------------------------


def _assign(x, c0, c1):
    """Hard 2-means assignment: 1 where x is strictly closer to c1 (ties -> 0)."""
    return tf.cast(tf.square(x - c1) < tf.square(x - c0), tf.int32)


def _kmeans_resp(x):
    """Hard responsibilities (N, 2) of Lloyd 2-means started at (min, max).

    In 1-D with distinct min and max, the minimum always stays in cluster 0 and
    the maximum in cluster 1, so neither cluster empties and cluster 0 is the
    low-centre one.  (The counts are still guarded against zero.)
    """
    c0 = tf.reduce_min(x)
    c1 = tf.reduce_max(x)
    labels0 = _assign(x, c0, c1)

    def cond(i, labels, changed):
        return tf.logical_and(changed, i < KMEANS_MAX_ITER)

    def body(i, labels, changed):
        is1 = tf.cast(labels, _DTYPE)
        is0 = 1.0 - is1
        n1 = tf.reduce_sum(is1)
        n0 = tf.reduce_sum(is0)
        c0 = tf.reduce_sum(is0 * x) / tf.maximum(n0, 1.0)
        c1 = tf.reduce_sum(is1 * x) / tf.maximum(n1, 1.0)
        new = _assign(x, c0, c1)
        return i + 1, new, tf.reduce_any(tf.not_equal(new, labels))

    _, labels, _ = tf.while_loop(
        cond, body, (tf.constant(0, tf.int32), labels0, tf.constant(True))
    )
    return tf.one_hot(labels, 2, dtype=_DTYPE)


def m_step(x, resp, reg_covar):
    """scikit-learn's M-step for a 1-D, 2-component full-covariance mixture.

    Args:
      x: (N,) float64 values.
      resp: (N, 2) float64 responsibilities (rows sum to 1).
      reg_covar: scalar float64 added to each variance.

    Returns:
      ``(means, variances, weights)``, each (2,) float64.
    """
    n = tf.cast(tf.shape(x)[0], _DTYPE)
    nk = tf.reduce_sum(resp, axis=0) + 10.0 * _EPS
    means = tf.linalg.matvec(resp, x, transpose_a=True) / nk
    diff = x[:, None] - means[None, :]
    variances = tf.reduce_sum(resp * tf.square(diff), axis=0) / nk + reg_covar
    weights = nk / n
    return means, variances, weights


def e_step(x, means, variances, weights):
    """Log-responsibilities (N, 2) and lower bound (mean log-sum-exp)."""
    dist = tfp.distributions.Normal(loc=means, scale=tf.sqrt(variances))
    weighted = dist.log_prob(x[:, None]) + tf.math.log(weights)[None, :]
    log_norm = tf.reduce_logsumexp(weighted, axis=1)
    log_resp = weighted - log_norm[:, None]
    return log_resp, tf.reduce_mean(log_norm)


def _em(x, max_iter, tol, reg_covar):
    means, variances, weights = m_step(x, _kmeans_resp(x), reg_covar)
    neg_inf = tf.constant(-np.inf, _DTYPE)

    def cond(n_iter, lower_bound, converged, means, variances, weights):
        return tf.logical_and(tf.logical_not(converged), n_iter < max_iter)

    def body(n_iter, prev_lower_bound, converged, means, variances, weights):
        log_resp, lower_bound = e_step(x, means, variances, weights)
        means, variances, weights = m_step(x, tf.exp(log_resp), reg_covar)
        converged = tf.abs(lower_bound - prev_lower_bound) < tol
        return n_iter + 1, lower_bound, converged, means, variances, weights

    n_iter, lower_bound, converged, means, variances, weights = tf.while_loop(
        cond,
        body,
        (tf.constant(0, tf.int32), neg_inf, tf.constant(False), means, variances, weights),
    )
    log_resp, _ = e_step(x, means, variances, weights)
    return {
        "means": means,
        "variances": variances,
        "weights": weights,
        "posteriors": tf.exp(log_resp),
        "n_iter": n_iter,
        "converged": converged,
        "lower_bound": lower_bound,
    }


def _degenerate(x, reg_covar):
    """All values equal: no evidence of noise, every sample is clean."""
    v = x[0]
    n = tf.shape(x)[0]
    return {
        "means": tf.stack([v, v]),
        "variances": tf.stack([reg_covar, reg_covar]),
        "weights": tf.constant([1.0, 0.0], _DTYPE),
        "posteriors": tf.one_hot(tf.zeros([n], tf.int32), 2, dtype=_DTYPE),
        "n_iter": tf.constant(0, tf.int32),
        "converged": tf.constant(True),
        # mean log-likelihood of the degenerate fit: log N(v; v, reg_covar)
        "lower_bound": -0.5 * (
            tf.constant(math.log(2.0 * math.pi), _DTYPE) + tf.math.log(reg_covar)
        ),
    }


def gmm_em(x, max_iter=10, tol=1e-2, reg_covar=5e-4):
    """Fit the 2-component mixture with plain TF ops (no ``tf.function``).

    Args:
      x: (N,) float64 tensor, N >= 2, all finite (not checked here).
      max_iter: int32 scalar, maximum EM iterations (0 = initialisation only).
      tol: float64 scalar, convergence threshold on the lower-bound change.
      reg_covar: float64 scalar > 0 added to the variances.

    Returns:
      dict of tensors, components sorted so index 0 has the lower mean:
      ``means``, ``variances``, ``weights`` (2,) float64; ``posteriors``
      (N, 2) float64; ``clean_probability`` (N,) float64 (= posteriors[:, 0]);
      ``n_iter`` int32; ``converged`` bool; ``lower_bound`` float64 (mean
      log-likelihood at the last EM step); ``degenerate`` bool (all values
      equal, see the module docstring).
    """
    x = _to_tensor(x, _DTYPE)
    max_iter = _to_tensor(max_iter, tf.int32)
    tol = _to_tensor(tol, _DTYPE)
    reg_covar = _to_tensor(reg_covar, _DTYPE)
    degenerate = tf.equal(tf.reduce_min(x), tf.reduce_max(x))
    out = tf.cond(
        degenerate,
        lambda: _degenerate(x, reg_covar),
        lambda: _em(x, max_iter, tol, reg_covar),
    )
    # Put the low-mean (clean) component first.
    swap = out["means"][1] < out["means"][0]
    order = tf.where(swap, tf.constant([1, 0]), tf.constant([0, 1]))
    for key in ("means", "variances", "weights"):
        out[key] = tf.gather(out[key], order)
    out["posteriors"] = tf.gather(out["posteriors"], order, axis=1)
    out["clean_probability"] = out["posteriors"][:, 0]
    out["degenerate"] = degenerate
    return out


_SIGNATURE = (
    tf.TensorSpec([None], tf.float64, name="x"),
    tf.TensorSpec([], tf.int32, name="max_iter"),
    tf.TensorSpec([], tf.float64, name="tol"),
    tf.TensorSpec([], tf.float64, name="reg_covar"),
)

_fit_xla = tf.function(gmm_em, input_signature=_SIGNATURE, jit_compile=True)
_fit_graph = tf.function(gmm_em, input_signature=_SIGNATURE, jit_compile=False)
_use_xla = True


def _to_tensor(value, dtype):
    """Tensor of `dtype`; Python/NumPy values converted directly (``tf.cast`` of a
    Python float would round it through float32 first)."""
    if tf.is_tensor(value):
        return tf.cast(value, dtype)
    return tf.convert_to_tensor(np.asarray(value, dtype=dtype.as_numpy_dtype))


def fit_gmm_tensor(x, max_iter=10, tol=1e-2, reg_covar=5e-4):
    """Tensor-level fit: ``gmm_em`` compiled as one XLA ``tf.function``.

    Traced once for all input lengths (input signature ``[None]``); XLA
    compiles once per distinct N.  Falls back to a non-XLA ``tf.function`` if
    XLA cannot compile it on this device.  Can be called from inside other
    ``tf.function`` graphs.  Inputs are cast to float64/int32; see ``gmm_em``
    for the returned dict.
    """
    global _use_xla
    args = (
        _to_tensor(x, tf.float64),
        _to_tensor(max_iter, tf.int32),
        _to_tensor(tol, tf.float64),
        _to_tensor(reg_covar, tf.float64),
    )
    if _use_xla and tf.executing_eagerly():
        try:
            return _fit_xla(*args)
        except (tf.errors.UnimplementedError, tf.errors.NotFoundError,
                tf.errors.InvalidArgumentError) as exc:
            if "xla" not in str(exc).lower() and "kernel" not in str(exc).lower():
                raise
            # No XLA kernel for some op on this device: use the plain graph.
            _use_xla = False
    return (_fit_xla if _use_xla else _fit_graph)(*args)


# --------------------------------------------------------------------------
# NumPy-facing API
# --------------------------------------------------------------------------


def _as_values(values, what):
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DmkerasError(f"{what} must be numeric: {exc}") from None
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim > 1:
        raise DmkerasError(f"{what} must be 1-D (got shape {arr.shape})")
    arr = arr.reshape(-1)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise DmkerasError(
            f"{what} contain {int(bad.sum())} non-finite value(s) (NaN or inf), "
            f"first at index {int(np.flatnonzero(bad)[0])}"
        )
    return arr


def _log_normal(x, mean, var):
    return -0.5 * (math.log(2.0 * math.pi) + np.log(var) + (x - mean) ** 2 / var)


@dataclasses.dataclass(frozen=True, eq=False)
class GMMFit:
    """A fitted 2-component 1-D Gaussian mixture; component 0 has the lower mean.

    For a degenerate fit (all values equal) the weights are ``(1, 0)`` and
    ``clean_probability`` returns 1.0 everywhere.
    """

    means: np.ndarray  # (2,) float64, [low-mean (clean), high-mean (noisy)]
    variances: np.ndarray  # (2,)
    weights: np.ndarray  # (2,)
    n_iter: int
    converged: bool
    lower_bound: float = float("nan")  # mean log-likelihood (sklearn lower_bound_)

    def _weighted_log_density(self, x):
        with np.errstate(divide="ignore"):
            log_w = np.log(self.weights)
        return np.stack(
            [_log_normal(x, self.means[k], self.variances[k]) + log_w[k] for k in range(2)]
        )

    def clean_probability(self, losses) -> np.ndarray:
        """Posterior of the low-mean component for each value of ``losses``."""
        x = _as_values(losses, "losses")
        lw = self._weighted_log_density(x)
        top = lw.max(axis=0)
        resp = np.exp(lw - top)
        return resp[0] / resp.sum(axis=0)

    def pdf(self, x) -> tuple[np.ndarray, np.ndarray]:
        """Weighted density ``weight_k * N(x; mean_k, var_k)`` of each component.

        Returns ``(clean, noisy)`` arrays shaped like ``x`` (for plots); their
        sum is the mixture density.
        """
        x = np.asarray(x, dtype=np.float64)
        lw = self._weighted_log_density(x)
        return np.exp(lw[0]), np.exp(lw[1])


def fit_loss_gmm(
    losses, *, max_iter: int = 10, tol: float = 1e-2, reg_covar: float = 5e-4
) -> tuple[GMMFit, np.ndarray]:
    """Fit DivideMix's 2-component GMM to per-sample losses.

    Same algorithm and defaults as ``sklearn.mixture.GaussianMixture(
    n_components=2, max_iter=10, tol=1e-2, reg_covar=5e-4)`` (k-means init);
    the values need not be normalised to [0, 1].

    Args:
      losses: 1-D array-like (or (N, 1)) of at least 2 finite values.
      max_iter: maximum EM iterations (>= 0; 0 = k-means initialisation only).
      tol: stop when the lower bound changes by less than this (>= 0).
      reg_covar: added to each variance (> 0); keeps a component that
        collapses onto a single value finite.

    Returns:
      ``(fit, clean_probability)``: the ``GMMFit`` (component 0 = low mean)
      and, for every input value, the posterior of the low-mean component
      (float64, shape (N,)).  If all values are equal the fit is degenerate
      and every clean probability is 1.0 (no evidence of noise).

    Raises:
      DmkerasError: fewer than 2 values, non-finite values, or bad settings.
    """
    x = _as_values(losses, "losses")
    if x.size < 2:
        raise DmkerasError(f"need at least 2 loss values to fit a 2-component GMM, got {x.size}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 0:
        raise DmkerasError(f"max_iter must be an integer >= 0, got {max_iter!r}")
    if not (np.isfinite(tol) and tol >= 0):
        raise DmkerasError(f"tol must be a finite number >= 0, got {tol!r}")
    if not (np.isfinite(reg_covar) and reg_covar > 0):
        raise DmkerasError(f"reg_covar must be a finite number > 0, got {reg_covar!r}")
    out = fit_gmm_tensor(tf.constant(x), int(max_iter), float(tol), float(reg_covar))
    out = {k: v.numpy() for k, v in out.items()}
    for key in ("means", "variances", "weights", "posteriors"):
        if not np.all(np.isfinite(out[key])):
            raise DmkerasError(
                f"GMM fit produced non-finite {key}; the loss values may be too large"
            )
    arrays = {}
    for key in ("means", "variances", "weights"):
        a = np.array(out[key], dtype=np.float64)
        a.setflags(write=False)
        arrays[key] = a
    fit = GMMFit(
        n_iter=int(out["n_iter"]),
        converged=bool(out["converged"]),
        lower_bound=float(out["lower_bound"]),
        **arrays,
    )
    return fit, np.array(out["clean_probability"], dtype=np.float64)
