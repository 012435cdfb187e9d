import numpy as np
import pytest

import minimoe as mm
from minimoe.gradcheck import THRESHOLD_BLOCK, check_loss
from minimoe.losses import bce_with_logits


def make_targets(tasks, n, rng):
    columns = [rng.integers(0, 2, n) if t == "binary" else rng.standard_normal(n) for t in tasks]
    return np.stack(columns, axis=1).astype(float)


@pytest.mark.parametrize("tasks, weights", [
    (("binary",), None), (("regression",), None), (("binary", "regression"), None),
    (("binary", "regression", "binary"), [0.5, 2.0, 1.0]), (("regression", "regression"), [0.0, 3.0]),
])
@pytest.mark.parametrize("scale", [1.0, 50.0])
def test_loss_gradients(tasks, weights, scale, rng):
    loss = mm.MultiTaskLoss(tasks, weights=weights)
    scores = scale * rng.standard_normal((8, len(tasks)))
    report = check_loss(loss, scores, make_targets(tasks, 8, rng))
    assert not report.failures(THRESHOLD_BLOCK), report


def test_loss_value_by_hand():
    loss = mm.MultiTaskLoss(("binary", "regression"), weights=[2.0, 0.5])
    scores = np.array([[0.0, 1.0], [2.0, -1.0]])
    targets = np.array([[1.0, 0.0], [0.0, 1.0]])
    bce = (np.log(2.0) + np.log1p(np.exp(2.0))) / 2                  # rows: log 2 and log(1 + e^2)
    squared = (1.0 + 4.0) / 2
    assert loss.forward(scores, targets) == pytest.approx(2.0 * bce + 0.5 * squared, rel=1e-12)
    np.testing.assert_allclose(loss.task_losses, [bce, squared], rtol=1e-12)
    sig = 1 / (1 + np.exp(-2.0))
    np.testing.assert_allclose(loss.backward(), [[2.0 * (0.5 - 1) / 2, 0.5 * 2 * 1.0 / 2],
                                                 [2.0 * sig / 2, 0.5 * 2 * -2.0 / 2]], rtol=1e-12)


def test_bce_is_exact_and_finite_at_huge_logits():
    scores = np.array([-1000.0, -50.0, 50.0, 1000.0])
    assert np.isfinite(bce_with_logits(scores, np.array([1.0, 1.0, 0.0, 0.0]))).all()
    np.testing.assert_allclose(bce_with_logits(scores, np.array([1.0, 1.0, 0.0, 0.0])), [1000.0, 50.0, 50.0, 1000.0])
    np.testing.assert_allclose(bce_with_logits(scores, np.array([0.0, 0.0, 1.0, 1.0])),
                               [0.0, np.exp(-50.0), np.exp(-50.0), 0.0], rtol=1e-12, atol=0)
    loss = mm.MultiTaskLoss(("binary",))
    loss.forward(np.array([[1000.0], [-1000.0]]), np.array([[0.0], [1.0]]))
    np.testing.assert_allclose(loss.backward(), [[0.5], [-0.5]])


@pytest.mark.parametrize("targets, error, match", [
    (np.array([[0.5, 1.0]]), ValueError, r"targets\[:, 0\] is a binary task, labels must be 0 or 1"),
    (np.array([[1.0, np.inf]]), ValueError, "targets must be finite"),
    (np.array([[1.0, 2.0, 3.0]]), ValueError, "targets must have 2 columns"),
    (np.array([1.0, 2.0]), ValueError, "targets must be 2-D"),
    (np.array([["a", "b"]]), TypeError, "targets must hold real numbers"),
])
def test_loss_rejects_bad_targets(targets, error, match):
    loss = mm.MultiTaskLoss(("binary", "regression"))
    with pytest.raises(error, match=match):
        loss.forward(np.zeros((1, 2)), targets)


def test_loss_rejects_bad_configuration():
    with pytest.raises(ValueError, match=r"tasks\[1\] must be one of"):
        mm.MultiTaskLoss(("binary", "ranking"))
    with pytest.raises(ValueError, match="weights must have one entry per task"):
        mm.MultiTaskLoss(("binary", "regression"), weights=[1.0])
    with pytest.raises(ValueError, match="weights must be finite and >= 0"):
        mm.MultiTaskLoss(("binary",), weights=[-1.0])
    with pytest.raises(ValueError, match="scores must have shape"):
        mm.MultiTaskLoss(("binary",)).forward(np.zeros((3, 2)), np.zeros((3, 2)))


def test_loss_does_not_modify_its_inputs(rng):
    scores, targets = rng.standard_normal((5, 2)), make_targets(("binary", "regression"), 5, rng)
    before = scores.copy(), targets.copy()
    loss = mm.MultiTaskLoss(("binary", "regression"))
    loss.forward(scores, targets)
    loss.backward()
    np.testing.assert_array_equal(scores, before[0])
    np.testing.assert_array_equal(targets, before[1])
