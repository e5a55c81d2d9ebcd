"""Tests of dmkeras.data.sources, one file per source module."""
