import numpy as np
import pytest

import minimoe as mm
from minimoe.module import Module, ModuleList, Sequential


def test_dotted_names_reach_every_descendant():
    model = mm.MMoE(n_features=5, n_experts=3, expert_units=(4, 2), tower_units=(3,), gate_units=(2,),
                    tasks=("binary", "regression"))
    names = set(model.params)
    assert {"experts.W0", "experts.b1", "gates.1.W", "gates.0.hidden.layers.0.W",
            "towers.0.layers.2.b", "towers.1.layers.0.W"} <= names
    assert set(model.grads) == names
    for name, value in model.params.items():
        assert model.grads[name].shape == value.shape, name


def test_params_are_the_live_arrays():
    model = mm.SharedBottom(n_features=3, bottom_units=(4,), tower_units=(2,))
    model.params["bottom.layers.0.W"][0, 0] = 42.0
    assert model.bottom.layers[0]._params["W"][0, 0] == 42.0
    assert model.params["bottom.layers.0.W"] is model.bottom.layers[0]._params["W"]


def test_zero_grad_clears_every_gradient(rng):
    model = mm.OMoE(n_features=4, n_experts=2, expert_units=(3,), tower_units=(2,))
    model.forward(rng.standard_normal((5, 4)))
    model.backward(np.ones((5, 2)))
    assert any(np.any(g) for g in model.grads.values())
    model.zero_grad()
    assert not any(np.any(g) for g in model.grads.values())


def test_backward_accumulates(rng):
    layer = mm.Linear(3, 2, seed=0)
    x, dy = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    layer.forward(x)
    layer.backward(dy)
    once = layer.grads["W"].copy()
    layer.backward(dy)
    np.testing.assert_allclose(layer.grads["W"], 2 * once)


def test_registration_rejects_clashes():
    module = Module()
    module.add_param("W", np.zeros(2))
    with pytest.raises(ValueError, match="already used"):
        module.add_param("W", np.zeros(2))
    with pytest.raises(ValueError, match="dotted"):
        module.add_child("a.b", Module())
    with pytest.raises(TypeError, match="must be a Module"):
        module.add_child("x", object())


def test_sequential_and_list_name_children_by_index():
    seq = Sequential([mm.Linear(2, 3, seed=0), mm.ReLU(), mm.Linear(3, 1, seed=1)])
    assert list(seq.params) == ["0.W", "0.b", "2.W", "2.b"]
    assert len(ModuleList([mm.ReLU(), mm.ReLU()])) == 2
    assert seq.n_params() == 2 * 3 + 3 + 3 + 1
