import numpy as np
import pytest

import minimoe as mm
from minimoe.module import Module, ModuleList, Sequential


def test_dotted_names_reach_every_descendant():
    model = mm.MMoE(n_features=5, n_experts=3, expert_units=(4, 2), tower_units=(3,), gate_units=(2,),
                    tasks=("binary", "regression"))
    names = set(model.params)
    assert {"levels.0.experts.shared.W0", "levels.0.experts.shared.b1", "levels.0.gates.task1.W",
            "levels.0.gates.task0.hidden.layers.0.W", "towers.0.layers.2.b", "towers.1.layers.0.W"} <= names
    assert set(model.grads) == names
    for name, value in model.params.items():
        assert model.grads[name].shape == value.shape, name


def test_params_are_the_live_arrays():
    model = mm.SharedBottom(n_features=3, bottom_units=(4,), tower_units=(2,))
    model.params["bottom.layers.0.W"][0, 0] = 42.0
    assert model.bottom.layers[0].params["W"][0, 0] == 42.0
    assert model.params["bottom.layers.0.W"] is model.bottom.layers[0].params["W"]


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


def test_assigned_sub_modules_are_registered():
    gate = mm.Gate(4, 3, gate_units=(2,))
    kinds = {name: type(module).__name__ for name, module in gate.named_modules()}
    assert kinds["softmax."] == "Softmax" and kinds["hidden."] == "MLP"


def test_every_module_attribute_of_every_model_is_a_registered_child():
    """No sub-module hides from named_modules(): gradient checks, train()/eval() and the flat
    buffers all walk the registry."""
    models = [mm.SharedBottom(4, (5,), (3,)), mm.OMoE(4, 2, (3,), (2,), expert_dropout=0.1),
              mm.MMoE(4, 2, (3,), (2,), gate_units=(2,), balance_weight=0.1)]
    for model in models:
        for _, module in model.named_modules():
            registered = set(map(id, module.children().values()))
            hidden = [name for name, value in vars(module).items()
                      if isinstance(value, Module) and id(value) not in registered]
            assert not hidden, f"{type(module).__name__} holds unregistered modules {hidden}"


def test_train_and_eval_set_the_whole_tree():
    model = mm.MMoE(4, 2, (3,), (2,), expert_dropout=0.2)
    assert all(m.training for m in model.modules())               # a new module trains, as in PyTorch
    model.eval()
    assert not any(m.training for m in model.modules())
    with model.mode(training=True):
        assert all(m.training for m in model.modules())
    assert not any(m.training for m in model.modules())           # the mode is put back


def test_sequential_with_dropout_is_deterministic_in_evaluation(rng):
    net = Sequential([mm.Linear(6, 8, seed=0), mm.Dropout(0.5, seed=1)])
    x = rng.standard_normal((20, 6))
    assert not np.array_equal(net.forward(x), net.forward(x))    # training: fresh masks
    net.eval()
    np.testing.assert_array_equal(net.forward(x), net.forward(x))
    np.testing.assert_array_equal(net.forward(x), net[0].forward(x))


def test_params_live_in_one_flat_buffer_per_dtype():
    model = mm.MMoE(4, 2, (3,), (2,))
    flat_params, flat_grads = model.flat_parameters()
    assert list(flat_params) == ["float64"] and flat_params["float64"].size == model.n_params()
    for name, value in model.params.items():
        assert value.base is flat_params["float64"], name
        assert model.grads[name].base is flat_grads["float64"], name


def test_a_parameter_added_after_construction_joins_the_buffers_and_zero_grad():
    model = mm.SharedBottom(3, (4,), (2,))
    model.towers[0].add_param("late", np.ones(5))
    model.towers[0].grads["late"][...] = 7.0
    model.zero_grad()
    assert not model.grads["towers.0.late"].any()                 # zeroed with the rest
    flat_params, _ = model.flat_parameters()
    assert flat_params["float64"].size == model.n_params()
    assert model.params["towers.0.late"].base is flat_params["float64"]
    np.testing.assert_array_equal(model.params["towers.0.late"], 1.0)   # values carried over
