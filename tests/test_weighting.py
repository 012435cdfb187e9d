"""Learned uncertainty weights and per-task gradient norms."""

import numpy as np
import pytest

import minimoe as mm
from minimoe.gradcheck import THRESHOLD_BLOCK, check_loss, numerical_gradient, relative_error
from minimoe.weighting import UncertaintyWeightedLoss, task_gradient_norms


def _scores_and_targets(rng, n=11):
    scores = rng.standard_normal((n, 3)) * 2
    targets = np.column_stack([rng.integers(0, 2, n), rng.standard_normal(n), rng.standard_normal(n) * 5])
    return scores, targets


def test_one_start_per_task():
    loss = UncertaintyWeightedLoss(("binary", "regression"), initial_log_variance=[0.5, 9.0])
    np.testing.assert_array_equal(loss.params["log_variance"], [0.5, 9.0])
    np.testing.assert_allclose(loss.weights, [np.exp(-0.5), 0.5 * np.exp(-9.0)])


def test_uncertainty_loss_formula(rng):
    loss = UncertaintyWeightedLoss(("binary", "regression", "regression"))
    loss.params["log_variance"][:] = [0.4, -1.0, 2.0]
    scores, targets = _scores_and_targets(rng)
    per_task = mm.MultiTaskLoss(loss.tasks)
    per_task.forward(scores, targets)
    s = np.array([0.4, -1.0, 2.0])
    expected = (np.array([1.0, 0.5, 0.5]) * np.exp(-s) * per_task.task_losses + 0.5 * s).sum()
    assert loss.forward(scores, targets) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(loss.variances, np.exp(s))


def test_uncertainty_loss_gradients(rng):
    loss = UncertaintyWeightedLoss(("binary", "regression", "regression"), initial_log_variance=0.3)
    loss.params["log_variance"][:] = [0.4, -1.0, 2.0]
    scores, targets = _scores_and_targets(rng)
    report = check_loss(loss, scores, targets)                             # d L / d scores, d L / d s
    assert not report.failures(THRESHOLD_BLOCK), report
    loss.forward(scores, targets)
    loss.zero_grad()
    loss.backward()
    analytic = loss.grads["log_variance"].copy()
    numeric = numerical_gradient(lambda: np.asarray(loss.forward(scores, targets)),
                                 loss.params["log_variance"], np.ones(()))
    assert relative_error(analytic, numeric) < THRESHOLD_BLOCK               # d L / d s
    assert np.abs(analytic).min() > 0


def test_uncertainty_optimum_is_the_task_loss(rng):
    """At d L / d s = 0: exp(s) = L_k for regression and 2 L_k for binary."""
    loss = UncertaintyWeightedLoss(("binary", "regression", "regression"))
    scores, targets = _scores_and_targets(rng)
    loss.forward(scores, targets)
    loss.params["log_variance"][:] = np.log(loss.task_losses * np.array([2.0, 1.0, 1.0]))
    loss.zero_grad()
    loss.forward(scores, targets)
    loss.backward()
    np.testing.assert_allclose(loss.grads["log_variance"], 0.0, atol=1e-12)


def test_uncertainty_weighting_recovers_the_noise_variance_ratio():
    """Two regression tasks with label noise sd 0.5 and 2.0 (variance ratio 16). The learned
    variances follow each task's training MSE; measured over seeds 0-3: ratios 14.6 to 15.7."""
    X, Y = mm.data.make_synthetic(8000, 20, correlation=0.5, seed=0, noise_std=0.0)
    Y = Y + np.random.default_rng(100).standard_normal(Y.shape) * np.array([0.5, 2.0])
    model = mm.MMoE(20, 4, (16,), (8,), seed=0)
    loss = UncertaintyWeightedLoss(("regression", "regression"))
    start = loss.params["log_variance"].copy()
    history = mm.fit(model, X[:6000], Y[:6000], epochs=20, batch_size=128, optimizer=mm.Adam(lr=1e-2),
                     loss=loss, seed=0, progress=False)
    assert not np.array_equal(loss.params["log_variance"], start)            # fit trained s
    ratio = loss.variances[1] / loss.variances[0]
    assert abs(ratio / 16 - 1) < 0.15, (loss.variances, ratio)
    assert np.isclose(history.train_total[-1], loss.combine(history.train_loss[-1]))


def test_shared_parameters_by_model():
    sb = mm.SharedBottom(4, (5,), (3,))
    omoe, mmoe = mm.OMoE(4, 3, (5,), (3,)), mm.MMoE(4, 3, (5,), (3,))
    assert sb.shared_parameters() == ["bottom.layers.0.W", "bottom.layers.0.b"]
    assert set(omoe.shared_parameters()) == {"levels.0.experts.shared.W0", "levels.0.experts.shared.b0",
                                             "levels.0.gates.shared.W", "levels.0.gates.shared.b"}  # one gate, shared
    assert mmoe.shared_parameters() == ["levels.0.experts.shared.W0", "levels.0.experts.shared.b0"]


def test_shared_parameters_include_the_input_layer():
    inputs = mm.FeatureInput([5, 3], n_numeric=2, seed=0)
    model = mm.MMoE(None, 2, (4,), (3,), inputs=inputs)
    assert {"inputs.embeddings.0.W", "inputs.embeddings.1.W"} <= set(model.shared_parameters())


def test_last_shared_layer_by_model():
    assert mm.SharedBottom(4, (5, 6), (3,)).shared_parameters(last_layer=True) == ["bottom.layers.2.W"]
    assert mm.MMoE(4, 3, (5, 6), (3,)).shared_parameters(last_layer=True) == ["levels.0.experts.shared.W1"]
    assert mm.OMoE(4, 3, (5,), (3,)).shared_parameters(last_layer=True) == ["levels.0.experts.shared.W0"]


def test_task_gradient_norms_show_the_scale_problem():
    X, Y = mm.data.make_mixed_tasks(2000, seed=0)
    model = mm.MMoE(20, 4, (8,), (4,), tasks=("binary", "regression"), seed=0)
    norms = task_gradient_norms(model, X, Y)
    assert norms.shape == (2,) and (norms > 0).all()
    assert norms[1] > 100 * norms[0]                         # seconds swamp a click (measured ~1900x)
    # Static weights scale each task's share exactly.
    weighted = task_gradient_norms(model, X, Y, mm.MultiTaskLoss(model.tasks, weights=[3.0, 0.5]))
    np.testing.assert_allclose(weighted, norms * [3.0, 0.5], rtol=1e-10)
    assert not any(grad.any() for grad in model.grads.values())


def test_task_gradient_norms_add_up_to_the_joint_gradient(rng):
    X, Y = mm.data.make_mixed_tasks(300, n_features=6, seed=1)
    model = mm.SharedBottom(6, (7,), (3,), tasks=("binary", "regression"), seed=0)
    loss = mm.MultiTaskLoss(model.tasks)
    loss.forward(model.forward(X), Y)
    model.zero_grad()
    model.backward(loss.backward())
    joint = np.concatenate([model.grads[name].ravel() for name in model.shared_parameters()])
    norms = task_gradient_norms(model, X, Y)
    assert np.linalg.norm(joint) <= norms.sum() + 1e-9                     # triangle inequality
    assert np.linalg.norm(joint) >= abs(norms[0] - norms[1]) - 1e-9


def test_task_gradient_norms_reject_a_mismatched_loss():
    model = mm.MMoE(4, 3, (5,), (3,), tasks=("binary", "regression"))
    with pytest.raises(ValueError, match="tasks"):
        task_gradient_norms(model, np.zeros((3, 4)), np.zeros((3, 2)), mm.MultiTaskLoss(("regression",) * 2))


def test_uncertainty_loss_rejects_bad_arguments():
    with pytest.raises(ValueError, match="initial_log_variance"):
        UncertaintyWeightedLoss(initial_log_variance=float("nan"))
    with pytest.raises(ValueError, match="one per task"):
        UncertaintyWeightedLoss(initial_log_variance=[0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="task"):
        UncertaintyWeightedLoss(("binary", "ranking"))
    with pytest.raises(RuntimeError, match="forward"):
        UncertaintyWeightedLoss().backward()


def test_gradnorm_objective_gradient():
    """d L_grad / d w_k with G_k = w_k n_k and the targets held constant, as in the paper."""
    loss = mm.GradNormLoss(("binary", "regression", "regression"), alpha=1.5)
    loss.weights[:] = [0.4, 1.1, 1.5]
    unweighted_norms = np.array([0.3, 2.0, 0.7])                            # n_k = ||d L_k / d W||
    task_losses = np.array([0.6, 3.0, 1.2])
    loss.initial_losses = np.array([0.7, 5.0, 1.1])
    targets = loss.target_norms(loss.weights * unweighted_norms, task_losses)
    _, analytic = loss.objective(loss.weights * unweighted_norms, task_losses)
    weights = loss.weights.copy()
    numeric = numerical_gradient(lambda: np.asarray(np.abs(weights * unweighted_norms - targets).sum()),
                                 weights, np.ones(()))
    assert relative_error(analytic, numeric) < THRESHOLD_BLOCK
    # The relative inverse training rates: the slowest task (loss ratio 1.09) gets the largest target.
    assert np.argmax(targets) == 2


def test_gradnorm_backward_is_the_joint_gradient_and_measures_each_task():
    X, Y = mm.data.make_mixed_tasks(300, n_features=6, seed=2)
    model = mm.MMoE(6, 3, (5,), (4,), tasks=("binary", "regression"), seed=0)
    loss = mm.GradNormLoss(model.tasks)
    loss.weights[:] = [1.7, 0.3]
    weights_before = loss.weights.copy()
    loss.forward(model.forward(X), Y)
    model.zero_grad()
    loss.backward_model(model)
    per_task_passes = {name: grad.copy() for name, grad in model.grads.items()}
    plain = mm.MultiTaskLoss(model.tasks, weights=weights_before)
    plain.forward(model.forward(X), Y)
    model.zero_grad()
    model.backward(plain.backward())
    for name, grad in model.grads.items():
        np.testing.assert_allclose(per_task_passes[name], grad, rtol=1e-10, atol=1e-14, err_msg=name)
    assert loss.grad_norms.shape == (2,) and (loss.grad_norms > 0).all()
    assert loss.weights.sum() == pytest.approx(2.0) and (loss.weights > 0).all()
    # One adaptation step, from the weights set by hand: the task whose norm exceeds its target
    # loses weight (Adam's first step moves each log-weight by lr = 0.05).
    over = loss.grad_norms > loss.target_norms(loss.grad_norms, loss.task_losses)
    assert over.any() and not over.all()
    step = np.log(loss.weights) - np.log(weights_before)
    np.testing.assert_allclose(step[over] - step[~over], -0.1, atol=1e-9)


def test_gradnorm_balances_a_click_and_seconds():
    """Measured on seeds 0-2: unweighted, the duration's gradient norm on the experts is 4,400-5,800
    times the click's and the click AUC 0.820-0.828; with GradNorm the ratio is 1.3-2.4 and the AUC
    0.880-0.885 (a click-only model: 0.879-0.882)."""
    X, Y = mm.data.make_mixed_tasks(20_000, 20, correlation=0.5, seed=0)
    X_train, X_test, Y_train, Y_test = mm.data.train_test_split(X, Y, 8000, seed=0)
    aucs, ratios = {}, {}
    for name, loss in (("unweighted", None), ("gradnorm", mm.GradNormLoss(("binary", "regression")))):
        model = mm.MMoE(20, 4, (16,), (16,), tasks=("binary", "regression"), seed=0)
        mm.fit(model, X_train, Y_train, epochs=10, batch_size=256, optimizer=mm.Adam(lr=1e-2), loss=loss,
               seed=0, progress=False)
        aucs[name] = mm.evaluate(model, X_test, Y_test)["task0"]["auc"]
        norms = task_gradient_norms(model, X_train[:2000], Y_train[:2000], loss)
        ratios[name] = norms[1] / norms[0]
    assert ratios["unweighted"] > 1000 and ratios["gradnorm"] < 5, ratios
    assert aucs["gradnorm"] > aucs["unweighted"] + 0.03, aucs


def test_gradnorm_starting_weights_are_normalised():
    loss = mm.GradNormLoss(("binary", "regression"), weights=[1.0, 1e-4])
    np.testing.assert_allclose(loss.weights, [2 / 1.0001, 2e-4 / 1.0001])


def test_gradnorm_rejects_bad_arguments():
    with pytest.raises(ValueError, match="weights must all be > 0"):
        mm.GradNormLoss(weights=[1.0, 0.0])
    with pytest.raises(ValueError, match="alpha"):
        mm.GradNormLoss(alpha=-1.0)
    with pytest.raises(ValueError, match="lr"):
        mm.GradNormLoss(lr=0.0)
    with pytest.raises(RuntimeError, match="forward"):
        mm.GradNormLoss().backward_model(mm.MMoE(4, 3, (5,), (3,)))
