"""Data: the paper's synthetic generator, a mixed click/duration benchmark, a click -> conversion
funnel with sample selection bias, the UCI Census-Income (KDD) loader, and splitting helpers."""

from . import census
from .census import load_census
from .funnel import FunnelTruth, esmm_labels, make_funnel
from .mixed import make_mixed_tasks
from .synthetic import make_synthetic, orthogonal_unit_vectors, related_signals, train_test_split

__all__ = ["FunnelTruth", "census", "esmm_labels", "load_census", "make_funnel", "make_mixed_tasks", "make_synthetic",
           "orthogonal_unit_vectors", "related_signals", "train_test_split"]
