"""PNG plots: written, and shaped by what the run has (one panel without a division)."""

import struct

import numpy as np

from dmkeras import division, gmm, plots


def _png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_training_curves_have_a_division_panel_only_when_there_was_a_division(tmp_path):
    dividemix = [{"epoch": e, "test_acc": 0.9, "test_acc_net1": 0.88, "test_acc_net2": 0.89, "net1_labeled": 50, "net2_labeled": 52,
                  "net1_auc": 0.95, "net2_auc": 0.96} for e in (1, 2, 3)]
    standard = [{"epoch": e, "test_acc": 0.8} for e in (1, 2, 3)]
    plots.training_curves(dividemix, 100, tmp_path / "dm.png")
    plots.training_curves(standard, 100, tmp_path / "ce.png")
    (w_dm, h_dm), (w_ce, h_ce) = _png_size(tmp_path / "dm.png"), _png_size(tmp_path / "ce.png")
    assert h_dm == h_ce and w_dm == 2 * w_ce


def test_loss_distribution_with_and_without_true_labels(tmp_path):
    losses = np.r_[np.random.default_rng(0).uniform(0, 0.2, 80), np.random.default_rng(1).uniform(0.6, 1, 20)]
    fit, prob = gmm.fit_loss_gmm(losses)
    result = division.Division(losses=losses, clean_prob=prob, labeled=prob > 0.5, fit=fit)
    plots.loss_distribution([result, result], np.arange(100) < 80, tmp_path / "a.png")
    plots.loss_distribution([result, None], None, tmp_path / "b.png")
    (w_a, _), (w_b, _) = _png_size(tmp_path / "a.png"), _png_size(tmp_path / "b.png")
    assert w_a == 2 * w_b
