"""Tests of launch/ (the absl entry points), one file per module."""
