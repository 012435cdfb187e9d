"""Data: the paper's synthetic generator and helpers to split data sets."""

from .synthetic import make_synthetic, orthogonal_unit_vectors, train_test_split

__all__ = ["make_synthetic", "orthogonal_unit_vectors", "train_test_split"]
