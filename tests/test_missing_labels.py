"""Missing labels: a NaN label means "not observed for this task". Each task's loss averages over its
labelled rows, unlabelled rows send no gradient into that task, and evaluation scores each task on
its labelled rows."""

import numpy as np
import pytest

import minimoe as mm
from minimoe.gradcheck import THRESHOLD_BLOCK, check_loss

from .helpers import assert_step_gradients

TASKS = ("binary", "regression")


def labels_with_gaps(rng, n=12, missing=0.4):
    Y = np.column_stack([rng.integers(0, 2, n), rng.standard_normal(n)]).astype(float)
    Y[rng.random(Y.shape) < missing] = np.nan
    Y[0] = [1.0, 0.3]                                        # every task keeps at least one label
    return Y


@pytest.mark.parametrize("loss_class", [mm.MultiTaskLoss, mm.UncertaintyWeightedLoss, mm.GradNormLoss])
def test_loss_gradient_with_missing_labels(loss_class, rng):
    loss = loss_class(TASKS)
    Y = labels_with_gaps(rng)
    assert np.isnan(Y).any(axis=0).all()                     # both tasks have gaps
    report = check_loss(loss, 3 * rng.standard_normal(Y.shape), Y)
    assert not report.failures(THRESHOLD_BLOCK), report


def test_each_task_averages_over_its_labelled_rows(rng):
    loss = mm.MultiTaskLoss(TASKS, weights=[0.5, 2.0])
    scores, Y = rng.standard_normal((12, 2)), labels_with_gaps(rng)
    total = loss.forward(scores, Y)
    for k in range(2):
        labelled = ~np.isnan(Y[:, k])
        alone = mm.MultiTaskLoss(TASKS[k:k + 1])
        assert loss.task_losses[k] == pytest.approx(alone.forward(scores[labelled, k:k + 1], Y[labelled, k:k + 1]))
        assert loss.task_counts[k] == labelled.sum()
        dscores = loss.backward()
        assert not dscores[~labelled, k].any()                # unlabelled rows: no gradient
    assert total == pytest.approx(0.5 * loss.task_losses[0] + 2.0 * loss.task_losses[1])


def test_a_task_without_labels_in_a_batch_contributes_zero(rng):
    loss = mm.MultiTaskLoss(TASKS)
    Y = np.column_stack([np.ones(5), np.full(5, np.nan)])
    total = loss.forward(rng.standard_normal((5, 2)), Y)
    assert np.isfinite(total) and loss.task_losses[1] == 0.0 and loss.task_counts[1] == 0
    dscores = loss.backward()
    assert np.isfinite(dscores).all() and not dscores[:, 1].any()


@pytest.mark.parametrize("loss_class", [mm.MultiTaskLoss, mm.UncertaintyWeightedLoss, mm.GradNormLoss])
@pytest.mark.parametrize("kind", ["SharedBottom", "OMoE", "MMoE", "CGC", "PLE"])
def test_model_gradients_through_a_loss_with_missing_labels(kind, loss_class, rng):
    """One fit step, by the function fit calls, with 40% of the labels missing."""
    model = {"SharedBottom": lambda: mm.SharedBottom(5, (6,), (3,), tasks=TASKS, seed=0),
             "OMoE": lambda: mm.OMoE(5, 3, (4,), (3,), tasks=TASKS, seed=0),
             "MMoE": lambda: mm.MMoE(5, 3, (4,), (3,), tasks=TASKS, seed=0),
             "CGC": lambda: mm.CGC(5, 1, 1, (4,), (3,), tasks=TASKS, seed=0),
             "PLE": lambda: mm.PLE(5, 2, 1, 1, (4,), (3,), tasks=TASKS, seed=0)}[kind]()
    X, Y = rng.standard_normal((16, 5)), labels_with_gaps(rng, n=16)
    assert_step_gradients(model, loss_class(TASKS), X, Y)


def test_unlabelled_rows_send_no_gradient_into_their_task(rng):
    """The model's gradient with NaN labels equals the sum over tasks of each task's gradient
    computed on its labelled rows alone: an unlabelled row reaches nothing through that task."""
    model = mm.MMoE(5, 3, (4,), (3,), tasks=TASKS, seed=0, balance_weight=0.0)
    X = rng.standard_normal((12, 5))
    Y = labels_with_gaps(rng)
    loss = mm.MultiTaskLoss(TASKS, weights=[0.6, 1.7])
    loss.forward(model.forward(X), Y)
    model.zero_grad()
    model.backward(loss.backward())
    with_gaps = {name: grad.copy() for name, grad in model.grads.items()}
    assert all(np.isfinite(grad).all() for grad in with_gaps.values())

    model.zero_grad()
    for k, weight in enumerate([0.6, 1.7]):
        rows = ~np.isnan(Y[:, k])
        single = mm.MultiTaskLoss(TASKS[k:k + 1])
        single.forward(model.forward(X[rows])[:, k:k + 1], Y[rows, k:k + 1])
        dscores = np.zeros((rows.sum(), 2))
        dscores[:, k] = weight * single.backward()[:, 0]
        model.backward(dscores)
    for name, grad in model.grads.items():
        np.testing.assert_allclose(with_gaps[name], grad, rtol=1e-12, atol=1e-15, err_msg=name)


def test_fit_with_most_of_one_tasks_labels_missing(rng):
    """A duration observed for 30% of the rows (after a click, say): training stays finite and the
    evaluation scores the duration on its labelled rows only."""
    X, Y = mm.data.make_synthetic(3000, 8, correlation=0.5, seed=0)
    Y[rng.random(len(Y)) < 0.7, 1] = np.nan
    X_train, X_test, Y_train, Y_test = mm.data.train_test_split(X, Y, 2000, seed=0)
    model = mm.MMoE(8, 4, (8,), (4,), seed=0)
    history = mm.fit(model, X_train, Y_train, epochs=8, batch_size=64, optimizer=mm.Adam(lr=1e-2),
                     validation=(X_test, Y_test), progress=False)
    assert np.isfinite(history.as_arrays()["train_loss"]).all()
    assert all(np.isfinite(param).all() for param in model.params.values())
    assert history.train_loss[-1][1] < 0.5 * history.train_loss[0][1]          # the sparse task learned
    results = mm.evaluate(model, X_test, Y_test)
    labelled = ~np.isnan(Y_test[:, 1])
    assert results["task1"]["n"] == labelled.sum() < 0.4 * len(Y_test)
    predictions = model.predict(X_test)[labelled, 1]
    assert results["task1"]["mse"] == pytest.approx(np.mean((predictions - Y_test[labelled, 1]) ** 2))
    assert results["task0"]["n"] == len(Y_test)


class TestMissingLabelErrors:
    model = mm.MMoE(3, 2, (3,), (2,), tasks=TASKS)
    X = np.zeros((4, 3))

    def test_a_task_with_no_label_at_all(self):
        Y = np.column_stack([np.ones(4), np.full(4, np.nan)])
        with pytest.raises(ValueError, match=r"Y\[:, 1\] \(task 'task1'\) has no label at all"):
            mm.fit(self.model, self.X, Y, epochs=1, progress=False)

    def test_nan_in_the_inputs(self):
        X = self.X.copy()
        X[2, 1] = np.nan
        with pytest.raises(ValueError, match="X must be finite, found nan at row 2, column 1"):
            mm.fit(self.model, X, np.ones((4, 2)), epochs=1, progress=False)

    def test_missing_labels_refused_when_not_allowed(self):
        Y = np.ones((4, 2))
        Y[3, 0] = np.nan
        with pytest.raises(ValueError, match=r"Y\[:, 0\] \(task 'task0'\) has a missing label \(NaN\) at row 3"):
            mm.fit(self.model, self.X, Y, epochs=1, progress=False, allow_missing=False)
        with pytest.raises(ValueError, match="allow_missing=False"):
            mm.evaluate(self.model, self.X, Y, allow_missing=False)

    def test_an_infinite_label_is_not_a_missing_one(self):
        Y = np.ones((4, 2))
        Y[1, 1] = np.inf
        with pytest.raises(ValueError, match="Y must be finite"):
            mm.fit(self.model, self.X, Y, epochs=1, progress=False)

    def test_a_binary_label_that_is_not_0_or_1(self):
        Y = np.ones((4, 2))
        Y[2, 0] = 0.5
        with pytest.raises(ValueError, match=r"Y\[:, 0\] is a binary task, labels must be 0 or 1"):
            mm.fit(self.model, self.X, Y, epochs=1, progress=False)
