"""DivideMix's loss-GMM detector side by side with cleanlab (confident learning).

cleanlab needs out-of-sample predicted probabilities: K-fold cross-validation with the same
backbone trained by plain cross-entropy. Both detectors are then scored against the known true
labels on the same samples, and the backbone is retrained on each detector's cleaned set.
Install the extra with `pip install -e ".[compare]"`.
"""

import numpy as np

from dmkeras import audit, experiment
from dmkeras.errors import ConfigError


def cleanlab_side_by_side(config, audit_config, split, labels, true_labels, scores) -> dict:
    """Detection quality of both detectors and test accuracy after retraining on each cleaned set."""
    if true_labels is None:
        raise ConfigError("compare needs the true labels to score the detectors (synthetic noise, or y_train_clean)", ("compare",))
    cleanlab = experiment._import_cleanlab()
    is_noisy = np.asarray(true_labels) != labels
    probs = experiment.cross_validated_probs(config, split, labels, folds=audit_config.cv_folds, epochs=audit_config.cv_epochs)
    cleanlab_flags = cleanlab.filter.find_label_issues(labels, probs)
    cleanlab_quality = cleanlab.rank.get_label_quality_scores(labels, probs)
    dividemix_flags = scores.mean_clean_prob <= config.dividemix.p_threshold
    results = {
        "dividemix": audit.detection_metrics(dividemix_flags, 1.0 - scores.mean_clean_prob, is_noisy),
        "cleanlab": audit.detection_metrics(cleanlab_flags, 1.0 - cleanlab_quality, is_noisy),
    }
    epochs = audit_config.retrain_epochs or config.optim.epochs
    for name, flags in (("dividemix", dividemix_flags), ("cleanlab", cleanlab_flags)):
        kept = np.flatnonzero(~flags)
        if len(kept) == 0:
            print(f"{name} flags every sample: nothing to retrain on", flush=True)
            continue
        print(f"retraining {config.model.backbone} on the {len(kept)} samples {name} keeps", flush=True)
        _, history = experiment.train_baseline(config, split, split.x_train[kept], labels[kept], epochs=epochs)
        results[name]["test_acc_after_cleaning"] = float(np.mean([h["test_acc"] for h in history[-10:]]))
    print("\n" + comparison_table(results), flush=True)
    return results


def comparison_table(results: dict) -> str:
    def fmt(value, pct=False):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return "-"
        return f"{100 * value:.2f}%" if pct else (f"{value:.3f}" if isinstance(value, float) else str(value))

    head = ["detector", "flagged", "precision", "recall", "F1", "AUC", "test acc after cleaning"]
    lines = [head]
    for name, r in results.items():
        lines.append([name, fmt(r["flagged"]), fmt(r["precision"]), fmt(r["recall"]), fmt(r["f1"]), fmt(r["auc"]),
                      fmt(r.get("test_acc_after_cleaning"), pct=True)])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)
