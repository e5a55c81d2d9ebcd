"""dmkeras: DivideMix (learning with noisy labels) for Keras 3 on TensorFlow."""

__version__ = "0.1.0"
