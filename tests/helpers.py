"""Small helpers shared by the tests."""

import os
from pathlib import Path

import numpy as np


def assert_gradients_live(module):
    """A gradient check of an all-zero gradient proves nothing: every gradient must carry signal."""
    dead = [name for name, grad in module.grads.items() if not np.any(grad)]
    assert not dead, f"gradients identically zero (dead units?): {dead}"


def away_from_zero(x, margin=0.1):
    """Shift values away from the ReLU kink so that +-1e-6 nudges never cross it."""
    return np.where(np.abs(x) < margin, np.sign(x + 1e-12) * margin, x)


def real_test_file() -> Path | None:
    """The real census-income.test(.gz): in ../shared/data beside the repo (as CI lays it out) or in
    $MINIMOE_DATA; None where neither has it."""
    candidates = [Path(__file__).resolve().parents[2] / "shared" / "data" / "census-income.test.gz"]
    if os.environ.get("MINIMOE_DATA"):
        candidates += [Path(os.environ["MINIMOE_DATA"]) / f"census-income.test{s}" for s in (".gz", "")]
    return next((path for path in candidates if path.is_file()), None)
