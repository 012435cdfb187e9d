"""The checker itself: it must catch a wrong backward, and its numbers must mean what they say."""

import numpy as np
import pytest

import minimoe as mm
from minimoe.gradcheck import THRESHOLD_BLOCK, check_module, numerical_gradient, relative_error


class LinearWithoutTranspose(mm.Linear):
    def backward(self, dy):
        self._grads["W"] += self.x.T @ dy
        self._grads["b"] += dy.sum(axis=0)
        return dy @ self._params["W"]                             # forgot the transpose (square W)


class LinearForgettingBias(mm.Linear):
    def backward(self, dy):
        self._grads["W"] += self.x.T @ dy
        return dy @ self._params["W"].T


@pytest.mark.parametrize("broken, wrong", [(LinearWithoutTranspose, "input"), (LinearForgettingBias, "b")])
def test_a_wrong_backward_fails_the_check(broken, wrong, rng):
    errors = check_module(broken(4, 4, seed=0), rng.standard_normal((5, 4)))
    assert errors[wrong] > 1e-2, errors


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
