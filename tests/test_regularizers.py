"""The two remedies for unused experts: the load-balancing loss and expert dropout, as blocks and
inside a model's training pass (gradient-checked with the auxiliary loss included)."""

import numpy as np
import pytest

import minimoe as mm
from minimoe.gradcheck import (
    THRESHOLD_BLOCK,
    THRESHOLD_MODEL,
    check_training_pass,
    numerical_gradient,
    relative_error,
    settle_relu_units,
)
from minimoe.layers import Dropout, softmax
from minimoe.moe import balance_loss, balance_loss_backward

from .helpers import assert_training_pass


def test_balance_loss_values():
    uniform = np.full((1, 6, 4), 0.25)
    one_expert = np.zeros((1, 6, 4))
    one_expert[0, :, 2] = 1.0
    assert balance_loss(uniform) == pytest.approx(0.0, abs=1e-15)
    assert balance_loss(one_expert) == pytest.approx(4 - 1)           # E - 1 when one expert takes all
    # Independent of the batch size: the same gates repeated twice give the same loss.
    gates = softmax(np.random.default_rng(0).standard_normal((2, 5, 3)))
    assert balance_loss(np.concatenate([gates, gates], axis=1)) == pytest.approx(balance_loss(gates))


@pytest.mark.parametrize("shape", [(1, 7, 4), (3, 5, 2), (2, 1, 6)])
def test_balance_loss_gradient(shape, rng):
    gates = rng.random(shape) + 0.1                     # any positive input, not only softmax rows
    analytic = balance_loss_backward(gates)
    numeric = numerical_gradient(lambda: np.asarray(balance_loss(gates)), gates, np.ones(()))
    assert relative_error(analytic, numeric) < THRESHOLD_BLOCK
    assert np.abs(analytic).max() > 0


def test_dropout_keeps_the_expected_value_and_is_the_identity_outside_training(rng):
    layer = Dropout(0.25, seed=0)
    x = np.ones((400, 50))
    out = layer.forward(x)
    assert set(np.unique(out)) <= {0.0, 1 / 0.75}
    assert abs(out.mean() - 1.0) < 0.02                # 20,000 draws: the mean is 1 within ~3 sd
    assert abs((out == 0).mean() - 0.25) < 0.02
    layer.eval()
    assert layer.forward(x) is x
    np.testing.assert_array_equal(layer.backward(x), x)   # no mask after an evaluation pass


def test_dropout_shares_its_mask_along_shared_axes(rng):
    layer = Dropout(0.5, seed=1, shared_axes=(0,))
    out = layer.forward(np.ones((3, 20, 4)))
    assert layer.mask.shape == (1, 20, 4)
    assert (out == out[0]).all()                         # every gate drops the same experts


def test_dropout_gradient_with_a_frozen_mask(rng):
    layer = Dropout(0.3, seed=2, shared_axes=(0,))
    x = rng.standard_normal((2, 6, 5))
    dout = rng.standard_normal(x.shape)
    layer.forward(x)
    layer.freeze_mask = True
    dx = layer.backward(dout)
    numeric = numerical_gradient(lambda: layer.forward(x), x, dout)
    assert relative_error(dx, numeric) < THRESHOLD_BLOCK


def test_dropout_rejects_bad_rates():
    for rate in (-0.1, 1.0, float("nan")):
        with pytest.raises(ValueError, match="rate"):
            Dropout(rate)


@pytest.mark.parametrize("kind", ["OMoE", "MMoE"])
@pytest.mark.parametrize("balance_weight, expert_dropout", [(0.7, 0.0), (0.0, 0.4), (0.5, 0.3)])
def test_training_pass_gradients(kind, balance_weight, expert_dropout, rng):
    model = getattr(mm, kind)(5, n_experts=4, expert_units=(6,), tower_units=(3,),
                              tasks=("binary", "regression"), seed=3, balance_weight=balance_weight,
                              expert_dropout=expert_dropout)
    X = rng.standard_normal((16, 5))
    assert_training_pass(model, X, threshold=THRESHOLD_MODEL)
    dropout = next(m for m in model.modules() if isinstance(m, Dropout))   # found by type
    if expert_dropout:
        assert (dropout.mask == 0).any()                 # the check covered dropped experts
    if balance_weight:
        assert model.auxiliary_loss() > 0


def test_the_training_pass_check_can_fail(rng):
    """A model whose auxiliary backward forgets the balancing gradient is caught on the gates."""

    class ForgetsTheBalancingGradient(mm.MMoE):
        def backward_auxiliary(self, input_grad=True):
            return None

    X = rng.standard_normal((16, 5))
    right = mm.MMoE(5, 4, (6,), (3,), seed=3, balance_weight=1.0)
    settle_relu_units(right, X)
    assert not check_training_pass(right, X).failures(THRESHOLD_MODEL)
    forgetful = ForgetsTheBalancingGradient(5, 4, (6,), (3,), seed=3, balance_weight=1.0)
    settle_relu_units(forgetful, X)
    report = check_training_pass(forgetful, X)
    assert max(error for name, error in report.items() if ".gates." in name) > 1e-3, report


def test_the_balance_gradient_reaches_the_gates_through_its_own_call(rng):
    plain = mm.MMoE(5, 4, (6,), (3,), seed=0)
    balanced = mm.MMoE(5, 4, (6,), (3,), seed=0, balance_weight=2.0)
    X, dout = rng.standard_normal((8, 5)), rng.standard_normal((8, 2))
    grads = []
    for model in (plain, balanced):
        model.zero_grad()
        model.forward(X)
        model.backward(dout)
        grads.append({name: grad.copy() for name, grad in model.grads.items()})
    for name in grads[0]:                                  # backward alone: the same for both
        np.testing.assert_array_equal(grads[0][name], grads[1][name], err_msg=name)
    balanced.backward_auxiliary()
    assert not np.allclose(grads[0]["levels.0.gates.task0.W"], balanced.grads["levels.0.gates.task0.W"])
    np.testing.assert_array_equal(grads[0]["towers.0.layers.0.W"], balanced.grads["towers.0.layers.0.W"])


def test_remedies_act_only_in_training(rng):
    plain = mm.MMoE(5, 4, (6,), (3,), seed=0)
    treated = mm.MMoE(5, 4, (6,), (3,), seed=0, balance_weight=1.0, expert_dropout=0.5)
    for name, value in plain.params.items():
        np.testing.assert_array_equal(value, treated.params[name])          # same initial weights
    X = rng.standard_normal((8, 5))
    np.testing.assert_array_equal(plain.predict(X), treated.predict(X))
    treated.eval()
    np.testing.assert_array_equal(plain.forward(X), treated.forward(X))
    assert treated.auxiliary_loss() == 0.0
    treated.train()
    assert not np.allclose(treated.forward(X), plain.forward(X))
    assert treated.auxiliary_loss() > 0


def test_remedies_are_saved_with_the_model(tmp_path):
    model = mm.MMoE(5, 4, (6,), (3,), seed=0, balance_weight=0.25, expert_dropout=0.1)
    model.save(tmp_path / "m.npz")
    loaded = mm.load(tmp_path / "m.npz")
    assert loaded.config["balance_weight"] == 0.25 and loaded.config["expert_dropout"] == 0.1
    assert loaded.levels[0].balance_weight == 0.25 and loaded.levels[0].dropout.rate == 0.1


@pytest.mark.parametrize("kwargs, name", [({"balance_weight": -1.0}, "balance_weight"),
                                          ({"balance_weight": float("inf")}, "balance_weight"),
                                          ({"expert_dropout": 1.0}, "expert_dropout")])
def test_remedies_reject_bad_values(kwargs, name):
    with pytest.raises(ValueError, match=name):
        mm.MMoE(5, 4, (6,), (3,), **kwargs)
