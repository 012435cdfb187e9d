"""Small helpers shared by the tests."""

import os
from pathlib import Path

import numpy as np

from minimoe.gradcheck import THRESHOLD_MODEL, check_module, check_training_step, settle_relu_units


def assert_gradients(module, x, *, threshold, settle=True, **options):
    """Check ``module`` on ``x`` with ``check_module`` (the training path, accumulation, no undeclared
    zeros, every unit live) and fail with the rows that are off. With ``settle`` (the default) the
    ReLU units are first moved to a point where each is on for some rows and no row sits at a kink
    (``settle_relu_units``). Returns the report."""
    if settle:
        settle_relu_units(module, x)
    report = check_module(module, x, **options)
    failures = report.failures(threshold)
    assert not failures, "\n".join(failures)
    return report


def assert_training_pass(model, X, *, threshold, **options):
    """``assert_gradients`` in training mode (dropout drawn and frozen, regularisers included)."""
    with model.mode(training=True):
        return assert_gradients(model, np.array(X, dtype=np.float64), threshold=threshold, **options)


def assert_step_gradients(model, loss, X, Y, *, threshold=THRESHOLD_MODEL, **options):
    """One fit step's gradients (``check_training_step``) within ``threshold``, units settled first."""
    settle_relu_units(model, X)
    report = check_training_step(model, loss, X, Y, **options)
    failures = report.failures(threshold)
    assert not failures, "\n".join(failures)
    return report


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
