"""PNG plots of a run (matplotlib, no display needed)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def training_curves(history: list[dict], num_samples: int, path: str) -> None:
    """Test accuracy (ensemble and each net; the validation accuracy dashed when there is one),
    division AUC and labeled fraction, and the epoch's cost (time, co-divide time, resident
    memory) per epoch."""
    epochs = [h["epoch"] for h in history]
    divided = any("net1_labeled" in h for h in history)
    two_nets = any("test_acc_net2" in h for h in history)
    costed = any(h.get("rss_mb") is not None for h in history)
    panels = 1 + divided + costed
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4), squeeze=False)
    axes = axes[0]
    ax = axes[0]
    for key, label in (("test_acc", "ensemble" if two_nets else "net"), ("test_acc_net1", "net 1"), ("test_acc_net2", "net 2")):
        values = [100 * h[key] if key in h else np.nan for h in history]
        if not np.all(np.isnan(values)):
            ax.plot(epochs, values, label=label, lw=2 if key == "test_acc" else 1)
    values = [100 * h["val_acc"] if "val_acc" in h else np.nan for h in history]
    validated = not np.all(np.isnan(values))
    if validated:  # the validation set's ensemble accuracy, dashed
        ax.plot(epochs, values, "--", label="validation" + (" (ensemble)" if two_nets else ""), lw=1)
    ax.set(xlabel="epoch", ylabel="accuracy (%)" if validated else "test accuracy (%)",
           title="Test and validation accuracy" if validated else "Test accuracy")
    ax.grid(alpha=0.3)
    ax.legend()
    if divided:
        _division_panel(axes[1], history, epochs, num_samples)
    if costed:
        _cost_panel(axes[-1], history, epochs)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _division_panel(ax, history, epochs, num_samples):
    for k in (1, 2):
        auc = [h.get(f"net{k}_auc", np.nan) for h in history]
        frac = [h[f"net{k}_labeled"] / num_samples if f"net{k}_labeled" in h else np.nan for h in history]
        if not np.all(np.isnan(auc)):
            ax.plot(epochs, auc, label=f"division AUC, net {k}")
        if not np.all(np.isnan(frac)):
            ax.plot(epochs, frac, "--", label=f"labeled fraction, net {k}")
    ax.set(xlabel="epoch", ylim=(0, 1.02), title="Co-divide quality")
    ax.grid(alpha=0.3)
    ax.legend()


def _cost_panel(ax, history, epochs):
    """Seconds per epoch and of its co-divide (left), resident memory (right): flat memory means
    nothing is copied or kept per epoch."""
    for key, label, style in (("epoch_time_s", "epoch", "-o"), ("codivide_time_s", "co-divide (scoring, GMM, pipelines)", "-s")):
        values = [h.get(key) if h.get(key) is not None else np.nan for h in history]
        if not np.all(np.isnan(np.asarray(values, float))):
            ax.plot(epochs, values, style, ms=3, label=label)
    ax.set(xlabel="epoch", ylabel="seconds", title="Cost per epoch", ylim=(0, None))
    ax.grid(alpha=0.3)
    memory = ax.twinx()
    memory.plot(epochs, [h.get("rss_mb") if h.get("rss_mb") is not None else np.nan for h in history], "k--", label="resident memory")
    memory.set(ylabel="resident memory (MiB)", ylim=(0, None))
    lines = ax.get_legend_handles_labels()
    more = memory.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="lower right")


def loss_distribution(divisions, is_clean, path: str) -> None:
    """Histogram of the losses each net's GMM was fitted to, split into truly clean and truly
    noisy samples when that is known, with the fitted GMM component densities. `is_clean`: one
    mask for all divisions, or a list with one per division (when each covers its own sample)."""
    masks = is_clean if isinstance(is_clean, (list, tuple)) else [is_clean] * len(divisions)
    masks = [m for d, m in zip(divisions, masks) if d is not None]
    divisions = [d for d in divisions if d is not None]
    fig, axes = plt.subplots(1, len(divisions), figsize=(5.5 * len(divisions), 4), squeeze=False)
    for k, (ax, division, is_clean) in enumerate(zip(axes[0], divisions, masks)):
        bins = np.linspace(0, 1, 51)
        if is_clean is not None:
            ax.hist(division.losses[is_clean], bins=bins, alpha=0.6, density=False, label="clean label")
            ax.hist(division.losses[~is_clean], bins=bins, alpha=0.6, density=False, label="noisy label")
        else:
            ax.hist(division.losses, bins=bins, alpha=0.6, label="all samples")
        if division.fit is not None:  # one GMM over all losses (per-class divisions have one per class)
            grid = np.linspace(0, 1, 200)
            clean_pdf, noisy_pdf = division.fit.pdf(grid)
            scale = len(division.losses) * (bins[1] - bins[0])
            ax.plot(grid, scale * clean_pdf, "g-", label="GMM clean component")
            ax.plot(grid, scale * noisy_pdf, "r-", label="GMM noisy component")
        ax.set(xlabel="normalised loss", ylabel="samples", title=f"Division made by net {k + 1}")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def sweep_curves(rows: list[dict], path: str) -> None:
    """Kept fraction, residual noise, smallest class's kept fraction and (after retraining) test
    accuracy against the clean-probability threshold."""
    thresholds = [r["threshold"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    series = [
        ("kept_fraction", "kept fraction", "-o"),
        ("residual_noise", "noise left among kept", "-s"),
        ("min_class_kept_fraction", "smallest class's kept fraction", "--^"),
        ("test_acc", "test accuracy after retraining", "-D"),
    ]
    for key, label, style in series:
        values = [r.get(key, np.nan) for r in rows]
        if not np.all(np.isnan(np.asarray(values, float))):
            ax.plot(thresholds, values, style, label=label)
    ax.set(xlabel="clean-probability threshold", ylim=(0, 1.02), title="Threshold sweep")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def accuracy_bars(labels: list[str], means, stds, path: str) -> None:
    """One horizontal bar per table row: mean last-10 test accuracy, its std as the error bar
    (launch.report --plot)."""
    means, stds = np.asarray(means, float), np.asarray(stds, float)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(labels) + 1.2))
    ypos = np.arange(len(labels))[::-1]
    ax.barh(ypos, means, xerr=stds, capsize=3, color="tab:blue", alpha=0.8)
    for y, m, s in zip(ypos, means, stds):
        ax.text(m + s + 0.3, y, f"{m:.2f}" + (f" ± {s:.2f}" if s else ""), va="center", fontsize=8)
    ax.set_yticks(ypos, labels, fontsize=8)
    low = np.nanmin(means - stds) if np.isfinite(means).any() else 0.0
    ax.set(xlabel="test accuracy, last 10 epochs (%)", xlim=(max(0.0, low - 5), 100), title="Last-10 test accuracy per row")
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
