"""Baselines without training: models that score rows from the data alone."""
