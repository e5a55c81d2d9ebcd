"""Tests of the whole rather than of one module: the README, the layout, parity with the PyTorch
reference, and the recipes end to end."""
