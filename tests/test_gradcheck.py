"""The checker itself: it must catch a wrong backward, and its numbers must mean what they say."""

import numpy as np
import pytest

import minimoe as mm
from minimoe.gradcheck import (
    THRESHOLD_BLOCK,
    check_module,
    dead_units,
    numerical_gradient,
    relative_error,
    relu_layers,
    settle_relu_units,
    structural_zeros,
)


class LinearWithoutTranspose(mm.Linear):
    def backward(self, dy, input_grad=True):
        self.grads["W"][...] += self.x.T @ dy
        self.grads["b"][...] += dy.sum(axis=0)
        return dy @ self.params["W"] if input_grad else None     # forgot the transpose (square W)


class LinearForgettingBias(mm.Linear):
    def backward(self, dy, input_grad=True):
        self.grads["W"][...] += self.x.T @ dy
        return dy @ self.params["W"].T if input_grad else None


class LinearThatOverwrites(mm.Linear):
    def backward(self, dy, input_grad=True):
        self.grads["W"][...] = self.x.T @ dy                     # = instead of +=
        self.grads["b"][...] += dy.sum(axis=0)
        return dy @ self.params["W"].T if input_grad else None


class LinearThatRebinds(mm.Linear):
    def backward(self, dy, input_grad=True):
        self._grads["W"] = self._grads["W"] + self.x.T @ dy      # a new array: the optimizer holds the old one
        self.grads["b"][...] += dy.sum(axis=0)
        return dy @ self.params["W"].T if input_grad else None


class LinearSkippingOnTheTrainingPath(mm.Linear):
    def backward(self, dy, input_grad=True):
        if input_grad:                                           # the weights only when dx is asked for
            self.grads["W"][...] += self.x.T @ dy
        self.grads["b"][...] += dy.sum(axis=0)
        return dy @ self.params["W"].T if input_grad else None


@pytest.mark.parametrize("broken, wrong", [(LinearWithoutTranspose, "input"), (LinearForgettingBias, "b"),
                                           (LinearThatOverwrites, "(backward twice)"),
                                           (LinearThatRebinds, "(backward twice)"),
                                           (LinearSkippingOnTheTrainingPath, "W")])
def test_a_wrong_backward_fails_the_check(broken, wrong, rng):
    report = check_module(broken(4, 4, seed=0), rng.standard_normal((5, 4)))
    assert report[wrong] > 1e-2, report
    assert any(row.startswith(wrong) for row in report.failures(THRESHOLD_BLOCK))


def test_zeros_compared_with_zeros_fail_unless_declared(rng):
    """A parameter the output never reaches has gradient 0 on both sides: the check fails until the
    caller declares it, and the declaration is in the report."""

    class WithAnUnusedOffset(mm.Linear):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.add_param("unused", np.ones(2))

    x = rng.standard_normal((5, 3))
    report = check_module(WithAnUnusedOffset(3, 2, seed=0), x)
    assert report["unused"] == np.inf and "not declared" in report.notes["unused"]
    declared = check_module(WithAnUnusedOffset(3, 2, seed=0), x, zeros={"unused": "declared zero: not used"})
    assert declared["unused"] == 0.0 and not declared.failures(THRESHOLD_BLOCK)


def test_a_gate_over_one_expert_is_declared_zero_by_structure(rng):
    assert set(structural_zeros(mm.Gate(3, 1, gate_units=(2,)))) == {"W", "b", "hidden.layers.0.W", "hidden.layers.0.b"}
    report = check_module(mm.CGC(3, n_shared_experts=1, n_task_experts=0, expert_units=(4,), tower_units=(2,),
                                 tasks=("binary",), seed=0), rng.standard_normal((16, 3)))
    assert report["levels.0.gates.task0.W"] == 0.0 and report.notes["levels.0.gates.task0.W"].startswith("declared")


def test_a_dead_unit_fails_the_check_until_the_units_are_settled(rng):
    mlp = mm.MLP(3, (4, 2), seed=0)
    mlp.params["layers.0.b"][0] = -100.0                         # unit 0 is off for every row
    x = rng.standard_normal((16, 3))
    report = check_module(mlp, x)
    assert report["(live units)"] == np.inf and "layers.1: 1 of 4 units never active" in report.notes["(live units)"]
    assert settle_relu_units(mlp, x) >= 1
    assert not check_module(mlp, x).failures(THRESHOLD_BLOCK)


def test_settled_units_are_on_for_some_rows_and_off_the_kink(rng):
    model = mm.PLE(4, n_levels=3, n_shared_experts=1, n_task_experts=1, expert_units=(3,), tower_units=(2,),
                   tasks=("binary", "regression"), seed=0)
    x = rng.standard_normal((16, 4))
    settle_relu_units(model, x)
    model.forward(x)
    assert not dead_units(model)
    for _, z, active in relu_layers(model):
        assert np.abs(z).min() >= 1e-3 and (active.mean(axis=0) >= 0.25).all()


def test_numerical_gradient_of_a_known_function(rng):
    x = rng.standard_normal((3, 2))
    dout = rng.standard_normal((3, 2))
    numeric = numerical_gradient(lambda: np.sin(x) * x, x, dout)
    np.testing.assert_allclose(numeric, (np.cos(x) * x + np.sin(x)) * dout, rtol=1e-8, atol=1e-10)


def test_numerical_gradient_restores_its_input(rng):
    x = rng.standard_normal(5)
    before = x.copy()
    numerical_gradient(lambda: x ** 3, x, np.ones(5))
    np.testing.assert_array_equal(x, before)


def test_numerical_gradient_needs_float64():
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda: np.zeros(1), np.zeros(1, dtype=np.float32), np.ones(1))


def test_relative_error_scale():
    assert relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert relative_error(np.array([1.0]), np.array([-1.0])) == 1.0
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(np.array([1.0]), np.array([1.0 + 1e-9])) < THRESHOLD_BLOCK
    with pytest.raises(ValueError, match="differ in shape"):
        relative_error(np.zeros(2), np.zeros(3))
