"""dmkeras: DivideMix (learning with noisy labels) for Keras 3 on TensorFlow."""

__version__ = "0.1.0"

__all__ = ["DivideMix", "find_label_issues", "label_quality_scores"]


def __getattr__(name):
    # `dmkeras.DivideMix` (and the label-issue functions) are imported on first use: `import dmkeras` (and so `import dmkeras.config`,
    # which the launch/ entry points read before TensorFlow's start-up) stays free of TensorFlow.
    # Importing it registers the class with Keras' serialisation (keras.saving.load_model).
    if name == "DivideMix":
        from dmkeras.task import DivideMix

        return DivideMix
    if name in ("find_label_issues", "label_quality_scores"):
        from dmkeras import label_issues

        return getattr(label_issues, name)
    raise AttributeError(f"module 'dmkeras' has no attribute {name!r}")
