"""Parity with the PyTorch reference (LiJunnan1992/DivideMix): see README.md in this folder.

Importing this package imports nothing: `convert` needs numpy only, `torch_dividemix` needs
PyTorch (never import it in a process that has TensorFlow).
"""
