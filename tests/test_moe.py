import numpy as np
import pytest

import minimoe as mm
from minimoe.gradcheck import THRESHOLD_BLOCK, numerical_gradient, relative_error
from minimoe.moe import mix, mix_backward

from .helpers import assert_gradients


def experts_by_loop(experts: mm.Experts, x: np.ndarray) -> np.ndarray:
    """Reference: each expert run on its own with plain matrix products, one at a time."""
    outputs = []
    for i in range(experts.n_experts):
        h = x
        for layer in range(experts.n_layers):
            h = np.maximum(h @ experts.params[f"W{layer}"][i] + experts.params[f"b{layer}"][i], 0)
        outputs.append(h)
    return np.stack(outputs, axis=1)                              # (N, E, H)


@pytest.mark.parametrize("n_experts, units", [(1, (3,)), (4, (5,)), (4, (5, 3)), (3, (4, 3, 2))])
def test_experts_gradients(n_experts, units, rng):
    experts = mm.Experts(d_in=4, n_experts=n_experts, units=units, seed=rng)
    assert_gradients(experts, rng.standard_normal((16, 4)), threshold=THRESHOLD_BLOCK)


@pytest.mark.parametrize("n_experts, units", [(1, (3,)), (8, (16,)), (5, (6, 4))])
def test_batched_experts_equal_the_loop(n_experts, units, rng):
    experts = mm.Experts(d_in=10, n_experts=n_experts, units=units, seed=rng)
    x = rng.standard_normal((9, 10))
    np.testing.assert_allclose(experts.forward(x), experts_by_loop(experts, x), rtol=1e-12, atol=1e-12)


def test_experts_are_initialised_like_separate_layers():
    experts = mm.Experts(d_in=100, n_experts=8, units=(16,), seed=0)
    bound = 1 / np.sqrt(100)
    assert np.abs(experts.params["W0"]).max() <= bound
    assert experts.params["W0"].std() == pytest.approx(bound / np.sqrt(3), rel=0.05)


@pytest.mark.parametrize("gate_units", [(), (3,), (4, 3)])
def test_gate_gradients(gate_units, rng):
    gate = mm.Gate(d_in=5, n_experts=4, gate_units=gate_units, seed=rng)
    assert_gradients(gate, rng.standard_normal((16, 5)), threshold=THRESHOLD_BLOCK)


def test_gate_rows_are_distributions(rng):
    weights = mm.Gate(d_in=5, n_experts=4, seed=0).forward(rng.standard_normal((6, 5)))
    assert weights.shape == (6, 4)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    assert (weights > 0).all()


def test_saturated_gate_gradients(rng):
    gate = mm.Gate(d_in=5, n_experts=4, seed=rng)
    gate.params["W"][...] *= 200.0                                # logits of order +-100: one-hot rows
    x = rng.standard_normal((6, 5))
    assert gate.forward(x).max(axis=1).min() > 1 - 1e-12
    assert_gradients(gate, x, floor=1.0, threshold=THRESHOLD_BLOCK)   # gradients ~1e-40: compare absolutely
    assert all(np.isfinite(g).all() for g in gate.grads.values())


@pytest.mark.parametrize("n_gates", [1, 3])
def test_mix_gradients(n_gates, rng):
    gates = rng.dirichlet(np.ones(4), size=(n_gates, 5))          # (G, N, E)
    experts = rng.standard_normal((5, 4, 3))                      # (N, E, H)
    dmixed = rng.standard_normal((n_gates, 5, 3))
    dgates, dexperts = mix_backward(gates, experts, dmixed)
    numeric_gates = numerical_gradient(lambda: mix(gates, experts), gates, dmixed)
    numeric_experts = numerical_gradient(lambda: mix(gates, experts), experts, dmixed)
    assert relative_error(dgates, numeric_gates) < THRESHOLD_BLOCK
    assert relative_error(dexperts, numeric_experts) < THRESHOLD_BLOCK


def test_mix_is_the_gated_sum(rng):
    gates, experts = rng.dirichlet(np.ones(3), size=(2, 4)), rng.standard_normal((4, 3, 5))
    mixed = mix(gates, experts)
    expected = sum(gates[1, 2, i] * experts[2, i] for i in range(3))
    np.testing.assert_allclose(mixed[1, 2], expected)


def test_experts_reject_bad_sizes():
    with pytest.raises(ValueError, match="n_experts must be >= 1"):
        mm.Experts(4, 0, (3,))
    with pytest.raises(ValueError, match="expert_units must hold at least one layer"):
        mm.Experts(4, 2, ())
