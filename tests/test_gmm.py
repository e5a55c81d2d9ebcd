"""Tests for dmkeras.gmm: the TF/TFP 2-component GMM against scikit-learn."""

import math
import warnings

import numpy as np
import pytest
import tensorflow as tf
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from dmkeras import gmm
from dmkeras.errors import DmkerasError
from dmkeras.gmm import GMMFit, fit_gmm_tensor, fit_loss_gmm

N = 5000
EPS = np.finfo(np.float64).eps


def bimodal(seed, n=N, noisy_frac=0.3, clean=(0.1, 0.05), noisy=(0.7, 0.1)):
    """noisy_frac * N(noisy) + (1 - noisy_frac) * N(clean), clipped to [0, 1]."""
    rng = np.random.default_rng(seed)
    is_noisy = rng.random(n) < noisy_frac
    x = np.where(is_noisy, rng.normal(*noisy, n), rng.normal(*clean, n))
    return np.clip(x, 0.0, 1.0)


def sklearn_fit(x, *, max_iter=10, tol=1e-2, reg_covar=5e-4, random_state=0):
    g = GaussianMixture(
        n_components=2, max_iter=max_iter, tol=tol, reg_covar=reg_covar,
        random_state=random_state,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        g.fit(x[:, None])
    order = np.argsort(g.means_.ravel())  # low-mean component first
    return {
        "means": g.means_.ravel()[order],
        "variances": g.covariances_.ravel()[order],
        "weights": g.weights_[order],
        "clean": g.predict_proba(x[:, None])[:, order[0]],
        "n_iter": g.n_iter_,
        "converged": g.converged_,
        "lower_bound": g.lower_bound_,
        "low_index": int(order[0]),
    }


def assert_matches_sklearn(x, post_atol=1e-2, param_atol=1e-3, **settings):
    fit, clean = fit_loss_gmm(x, **settings)
    ref = sklearn_fit(x, **settings)
    assert clean.shape == x.shape and clean.dtype == np.float64
    assert np.max(np.abs(clean - ref["clean"])) < post_atol
    np.testing.assert_allclose(fit.means, ref["means"], rtol=0, atol=param_atol)
    np.testing.assert_allclose(fit.variances, ref["variances"], rtol=0, atol=param_atol)
    np.testing.assert_allclose(fit.weights, ref["weights"], rtol=0, atol=param_atol)
    assert fit.n_iter == ref["n_iter"]
    assert fit.converged == ref["converged"]
    assert fit.means[0] <= fit.means[1]
    return fit, clean, ref


# ---------------------------------------------------------------- oracle tests


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_bimodal_matches_sklearn(seed):
    x = bimodal(seed)
    fit, clean, ref = assert_matches_sklearn(x)
    # With the same k-means start the two implementations agree to round-off.
    assert np.max(np.abs(clean - ref["clean"])) < 1e-9
    assert abs(fit.lower_bound - ref["lower_bound"]) < 1e-9
    assert fit.weights[0] > 0.6 and fit.means[0] < 0.2 < 0.6 < fit.means[1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lopsided_mixture_matches_sklearn(seed):
    x = bimodal(seed, noisy_frac=0.05)
    fit, clean, ref = assert_matches_sklearn(x)
    assert np.max(np.abs(clean - ref["clean"])) < 1e-9
    assert 0.9 < fit.weights[0] < 1.0


@pytest.mark.parametrize("seed", [0, 2])
def test_many_em_iterations_match_sklearn(seed):
    # Overlapping components with a tiny tol: dozens of EM iterations.
    x = bimodal(seed, clean=(0.2, 0.1), noisy=(0.6, 0.15))
    fit, clean, ref = assert_matches_sklearn(x, max_iter=150, tol=1e-9)
    assert fit.converged and fit.n_iter > 20
    assert np.max(np.abs(clean - ref["clean"])) < 1e-6


def test_max_iter_reached_is_not_converged():
    x = bimodal(0)
    fit, _, ref = assert_matches_sklearn(x, max_iter=1)
    assert fit.n_iter == 1 and not fit.converged and not ref["converged"]


def test_max_iter_zero_is_kmeans_initialisation_only():
    x = np.array([0.0, 0.1, 0.2, 0.9, 1.0])
    reg = 5e-4
    fit, _ = fit_loss_gmm(x, max_iter=0, reg_covar=reg)
    assert fit.n_iter == 0 and not fit.converged
    nk = np.array([3.0, 2.0]) + 10 * EPS
    np.testing.assert_allclose(fit.means, [0.3 / nk[0], 1.9 / nk[1]], rtol=1e-14)
    np.testing.assert_allclose(
        fit.variances,
        [(0.01 + 0.0 + 0.01) / nk[0] + reg, (0.0025 + 0.0025) / nk[1] + reg],
        rtol=1e-12,
    )
    np.testing.assert_allclose(fit.weights, nk / 5, rtol=1e-14)


def test_values_outside_unit_interval_work():
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.normal(2.0, 0.5, 3500), rng.normal(9.0, 1.5, 1500)])
    fit, clean, ref = assert_matches_sklearn(x)
    assert np.max(np.abs(clean - ref["clean"])) < 1e-9
    assert fit.means[0] == pytest.approx(2.0, abs=0.1)
    # Negative values too.
    fit_neg, clean_neg = fit_loss_gmm(-x)
    np.testing.assert_allclose(fit_neg.means, -fit.means[::-1], atol=1e-9)
    np.testing.assert_allclose(clean_neg, 1.0 - clean, atol=1e-9)


# ------------------------------------------------------ component identification


def test_low_mean_component_identified_when_sklearn_order_is_reversed():
    # For this data sklearn's k-means labels put the low-mean component at
    # index 1 for some random states; ours must still return it first.
    x = bimodal(1, noisy_frac=0.7)
    refs = [sklearn_fit(x, random_state=rs) for rs in (0, 1, 2)]
    assert {r["low_index"] for r in refs} == {1}, "test data no longer exercises order"
    fit, clean = fit_loss_gmm(x)
    for ref in refs:
        np.testing.assert_allclose(clean, ref["clean"], atol=1e-9)
        np.testing.assert_allclose(fit.means, ref["means"], atol=1e-9)
    assert fit.means[0] < fit.means[1]
    assert fit.weights[1] > fit.weights[0]  # noisy component is the larger one
    assert np.mean(clean[x < 0.3]) > 0.99 and np.mean(clean[x > 0.5]) < 0.01


def test_input_order_does_not_matter():
    x = bimodal(3)
    fit, clean = fit_loss_gmm(x)
    perm = np.random.default_rng(0).permutation(x.size)
    fit_p, clean_p = fit_loss_gmm(x[perm])
    np.testing.assert_allclose(clean_p, clean[perm], atol=1e-12)
    np.testing.assert_allclose(fit_p.means, fit.means, atol=1e-12)
    fit_r, clean_r = fit_loss_gmm(x[::-1])
    np.testing.assert_allclose(clean_r, clean[::-1], atol=1e-12)


# ------------------------------------------------------------------ edge cases


@pytest.mark.parametrize("values", [[], [0.3], np.zeros((0,))])
def test_fewer_than_two_values_raise(values):
    with pytest.raises(DmkerasError, match="at least 2"):
        fit_loss_gmm(values)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_raise(bad):
    x = bimodal(0, n=100)
    x[17] = bad
    with pytest.raises(DmkerasError, match="non-finite.*index 17"):
        fit_loss_gmm(x)


def test_bad_settings_and_shapes_raise():
    x = bimodal(0, n=100)
    with pytest.raises(DmkerasError, match="max_iter"):
        fit_loss_gmm(x, max_iter=-1)
    with pytest.raises(DmkerasError, match="max_iter"):
        fit_loss_gmm(x, max_iter=2.5)
    with pytest.raises(DmkerasError, match="tol"):
        fit_loss_gmm(x, tol=-1.0)
    with pytest.raises(DmkerasError, match="reg_covar"):
        fit_loss_gmm(x, reg_covar=0.0)
    with pytest.raises(DmkerasError, match="1-D"):
        fit_loss_gmm(np.ones((10, 2)))
    with pytest.raises(DmkerasError, match="numeric"):
        fit_loss_gmm(["a", "b"])


@pytest.mark.parametrize("value", [0.0, 0.37, 1.0, 123.0])
def test_all_values_equal_is_degenerate_all_clean(value):
    x = np.full(50, value)
    fit, clean = fit_loss_gmm(x)
    assert np.all(np.isfinite(clean)) and np.all(clean == 1.0)
    np.testing.assert_array_equal(fit.means, [value, value])
    np.testing.assert_array_equal(fit.variances, [5e-4, 5e-4])
    np.testing.assert_array_equal(fit.weights, [1.0, 0.0])
    assert fit.n_iter == 0 and fit.converged
    assert math.isfinite(fit.lower_bound)
    # New values, near or far, are also "clean"; densities are finite.
    new = np.array([value - 1.0, value, value + 5.0])
    np.testing.assert_array_equal(fit.clean_probability(new), 1.0)
    p0, p1 = fit.pdf(new)
    assert np.all(np.isfinite(p0)) and np.all(p1 == 0.0)


def test_two_values_minimum():
    fit, clean = fit_loss_gmm([0.8, 0.2])
    np.testing.assert_allclose(fit.means, [0.2, 0.8], atol=1e-12)
    np.testing.assert_allclose(fit.variances, [5e-4, 5e-4], rtol=1e-12)
    np.testing.assert_allclose(fit.weights, [0.5, 0.5], atol=1e-12)
    np.testing.assert_allclose(clean, [0.0, 1.0], atol=1e-12)
    ref = sklearn_fit(np.array([0.8, 0.2]))
    np.testing.assert_allclose(clean, ref["clean"], atol=1e-12)
    assert fit.n_iter == ref["n_iter"] and fit.converged == ref["converged"]


def test_two_distinct_values_many_samples():
    x = np.array([0.1] * 30 + [0.9] * 10)
    fit, clean, ref = assert_matches_sklearn(x)
    np.testing.assert_allclose(clean, ref["clean"], atol=1e-12)
    np.testing.assert_allclose(fit.weights, [0.75, 0.25], atol=1e-12)
    np.testing.assert_allclose(clean, (x == 0.1).astype(float), atol=1e-12)


def test_column_vector_and_tensor_inputs():
    x = bimodal(0, n=200)
    _, clean = fit_loss_gmm(x)
    _, clean_col = fit_loss_gmm(x[:, None])
    _, clean_tf = fit_loss_gmm(tf.constant(x, tf.float32))
    np.testing.assert_array_equal(clean_col, clean)
    np.testing.assert_allclose(clean_tf, clean, atol=1e-5)


# --------------------------------------------------------- hand-checked M-step


def test_single_m_step_by_hand():
    x = tf.constant([0.0, 1.0, 2.0, 4.0], tf.float64)
    resp = tf.constant([[1.0, 0.0], [1.0, 0.0], [0.5, 0.5], [0.0, 1.0]], tf.float64)
    reg = 1e-3
    reg_t = tf.constant(reg, tf.float64)
    means, variances, weights = (t.numpy() for t in gmm.m_step(x, resp, reg_t))
    nk0 = 2.5 + 10 * EPS  # 1 + 1 + 0.5
    nk1 = 1.5 + 10 * EPS  # 0.5 + 1
    m0 = (0.0 + 1.0 + 0.5 * 2.0) / nk0  # = 0.8
    m1 = (0.5 * 2.0 + 4.0) / nk1  # = 10/3
    v0 = ((0 - m0) ** 2 + (1 - m0) ** 2 + 0.5 * (2 - m0) ** 2) / nk0 + reg  # 1.4/2.5
    v1 = (0.5 * (2 - m1) ** 2 + (4 - m1) ** 2) / nk1 + reg  # (12/9)/1.5 = 8/9
    np.testing.assert_allclose(means, [m0, m1], rtol=1e-14)
    np.testing.assert_allclose(means, [0.8, 10 / 3], rtol=1e-12)
    np.testing.assert_allclose(variances, [v0, v1], rtol=1e-14)
    np.testing.assert_allclose(variances, [0.56 + reg, 8 / 9 + reg], rtol=1e-12)
    np.testing.assert_allclose(weights, [nk0 / 4, nk1 / 4], rtol=1e-14)

    # One E-step with those parameters, also by hand.
    params = (tf.constant(a) for a in (means, variances, weights))
    log_resp, lower_bound = gmm.e_step(x, *params)
    xv = x.numpy()[:, None]
    wlog = (
        -0.5 * np.log(2 * np.pi * variances) - (xv - means) ** 2 / (2 * variances) + np.log(weights)
    )
    lse = np.log(np.exp(wlog).sum(axis=1))
    np.testing.assert_allclose(log_resp.numpy(), wlog - lse[:, None], rtol=1e-12, atol=1e-14)
    assert lower_bound.numpy() == pytest.approx(lse.mean(), rel=1e-13)


# ------------------------------------------------------ GMMFit helpers & core


def test_clean_probability_and_pdf_consistent_with_fit():
    x = bimodal(4)
    fit, clean = fit_loss_gmm(x)
    assert isinstance(fit, GMMFit)
    np.testing.assert_allclose(fit.clean_probability(x), clean, atol=1e-12)
    grid = np.linspace(-0.2, 1.2, 57)
    p0, p1 = fit.pdf(grid)
    assert p0.shape == p1.shape == grid.shape
    np.testing.assert_allclose(p0 / (p0 + p1), fit.clean_probability(grid), atol=1e-12)
    # The weighted densities integrate to the weights.
    fine = np.linspace(-2, 3, 200001)
    q0, q1 = fit.pdf(fine)
    dx = fine[1] - fine[0]
    np.testing.assert_allclose([q0.sum() * dx, q1.sum() * dx], fit.weights, atol=1e-6)
    with pytest.raises(DmkerasError, match="non-finite"):
        fit.clean_probability([0.1, np.nan])


def test_tensor_core_in_graph_without_retracing():
    x = bimodal(0)
    ref = sklearn_fit(x)

    @tf.function
    def outer(v):
        out = fit_gmm_tensor(v, 10, 1e-2, 5e-4)
        return out["clean_probability"], out["means"], out["n_iter"], out["converged"]

    clean, means, n_iter, converged = outer(tf.constant(x))
    assert clean.dtype == tf.float64
    np.testing.assert_allclose(clean.numpy(), ref["clean"], atol=1e-9)
    np.testing.assert_allclose(means.numpy(), ref["means"], atol=1e-9)
    assert int(n_iter) == ref["n_iter"] and bool(converged) == ref["converged"]

    # Eager calls with different lengths reuse the single trace.
    fit_gmm_tensor(tf.constant(x[:1000]))
    before = gmm._fit_xla.experimental_get_tracing_count()
    for n in (1000, 1001, 1000):
        out = fit_gmm_tensor(x[:n])
        assert out["clean_probability"].shape == (n,)
    assert gmm._fit_xla.experimental_get_tracing_count() == before
    assert gmm._use_xla  # XLA compiled it on this machine


def test_python_scalar_settings_are_exact_float64():
    # tf.cast(5e-4, tf.float64) would round through float32.
    out = fit_gmm_tensor([0.2, 0.8], 10, 1e-2, 5e-4)
    np.testing.assert_allclose(out["variances"].numpy(), [5e-4, 5e-4], rtol=1e-13)
    assert out["means"].dtype == tf.float64


def test_falls_back_to_plain_graph_without_xla(monkeypatch):
    def no_xla(*args):
        raise tf.errors.UnimplementedError(None, None, "No registered XLA kernel for op")

    monkeypatch.setattr(gmm, "_fit_xla", no_xla)
    monkeypatch.setattr(gmm, "_use_xla", True)
    x = bimodal(0)
    _, clean = fit_loss_gmm(x)
    assert gmm._use_xla is False
    np.testing.assert_allclose(clean, sklearn_fit(x)["clean"], atol=1e-9)
