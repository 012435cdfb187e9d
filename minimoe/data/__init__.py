"""Data: the paper's synthetic generator, a mixed click/duration benchmark, the UCI Census-Income
(KDD) loader, and splitting helpers."""

from . import census
from .census import load_census
from .mixed import make_mixed_tasks
from .synthetic import make_synthetic, orthogonal_unit_vectors, related_signals, train_test_split

__all__ = ["census", "load_census", "make_mixed_tasks", "make_synthetic", "orthogonal_unit_vectors",
           "related_signals", "train_test_split"]
