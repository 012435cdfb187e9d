"""Data: the paper's synthetic generator, the UCI Census-Income (KDD) loader, and splitting helpers."""

from . import census
from .census import load_census
from .synthetic import make_synthetic, orthogonal_unit_vectors, train_test_split

__all__ = ["census", "load_census", "make_synthetic", "orthogonal_unit_vectors", "train_test_split"]
