import copy
import pickle
import re

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
    """No sub-module hides from named_modules(): gradient checks, train()/eval() and zero_grad
    all walk the registry."""
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


def _changed(before, model):
    """How many parameters of ``model`` differ from the copies in ``before``."""
    return sum(not np.array_equal(before[name], param) for name, param in model.params.items())


@pytest.mark.parametrize("duplicate", [copy.deepcopy, lambda model: pickle.loads(pickle.dumps(model))],
                         ids=["deepcopy", "pickle"])
def test_a_copied_model_trains_independently_of_the_original(duplicate):
    X, Y = mm.data.make_synthetic(300, 5, correlation=0.5, seed=0)
    original = mm.MMoE(5, 2, (3,), (2,), seed=0)
    copied = duplicate(original)
    before = {name: param.copy() for name, param in original.params.items()}
    history = mm.fit(copied, X, Y, epochs=3, optimizer=mm.Adam(lr=1e-2), progress=False)
    assert _changed(before, copied) == len(before)                  # every parameter of the copy moved
    assert _changed(before, original) == 0                          # and none of the original's
    assert history.train_total[-1] < history.train_total[0]
    mm.fit(original, X, Y, epochs=1, progress=False)                # the original trains on its own
    assert _changed(before, original) == len(before)


def test_a_parameter_kept_as_an_attribute_is_the_one_that_trains(rng):
    """A user's block may keep ``self.w = self.add_param(...)``: the array stays the parameter."""

    class Scale(Module):
        def __init__(self):
            super().__init__()
            self.w = self.add_param("w", np.ones(1))

        def forward(self, x):
            self.x = x
            return x * self.w

        def backward(self, dy, input_grad=True):
            self.grads["w"][...] += (dy * self.x).sum(axis=0)
            return dy * self.w if input_grad else None

    model = mm.SharedBottom(2, (4,), (2,), tasks=("regression",), seed=0)
    model.towers[0].layers.add_child("scale", Scale())
    X = rng.standard_normal((200, 2))
    Y = 3.0 * X[:, :1] + 1.0
    scale = model.towers[0].layers[-1]
    mm.fit(model, X, Y, epochs=5, optimizer=mm.Adam(lr=0.05), progress=False)
    assert scale.w is model.params["towers.0.layers.scale.w"]
    assert not np.allclose(scale.w, 1.0)                            # it moved, and forward reads it


def test_zero_grad_on_a_sub_module_detaches_nothing(rng):
    X, Y = rng.standard_normal((64, 4)), rng.standard_normal((64, 2))
    model = mm.MMoE(4, 2, (3,), (2,), seed=0)
    optimizer = mm.Adam(lr=1e-2)
    mm.fit(model, X, Y, epochs=1, optimizer=optimizer, progress=False)
    grads = dict(model.grads)
    model.towers[0].zero_grad()
    assert not model.towers[0].grads["layers.0.W"].any()
    assert all(model.grads[name] is grad for name, grad in grads.items())
    before = {name: param.copy() for name, param in model.params.items()}
    mm.fit(model, X, Y, epochs=1, optimizer=optimizer, progress=False)     # the same Adam continues
    assert _changed(before, model) == len(before)


def test_params_and_grads_cannot_be_replaced():
    model = mm.MMoE(4, 2, (3,), (2,))
    with pytest.raises(TypeError, match=r"write into the array in place.*\[\.\.\.\] = value"):
        model.params["towers.0.layers.0.W"] = np.zeros((3, 2))
    with pytest.raises(TypeError, match="grads cannot be replaced"):
        model.grads["towers.0.layers.0.W"] = np.zeros((3, 2))
    with pytest.raises(KeyError, match="no params named 'nope'"):
        model.params["nope"]


@pytest.mark.parametrize("block", [mm.Linear(3, 2), mm.ReLU(), mm.Softmax(), mm.Sigmoid(), mm.Embedding(4, 2),
                                   mm.Gate(3, 2)], ids=lambda block: type(block).__name__)
def test_backward_before_forward_says_so(block):
    with pytest.raises(AttributeError, match="call forward before backward"):
        block.backward(np.ones((1, 2)))


def test_a_model_backward_before_forward_says_so():
    with pytest.raises(RuntimeError, match="call forward"):
        mm.MMoE(4, 2, (3,), (2,)).backward(np.ones((1, 2)))


@pytest.mark.parametrize("block, x", [
    (mm.Linear(3, 1), np.ones((4, 3))), (mm.ReLU(), np.ones((4, 3))), (mm.Sigmoid(), np.ones((4, 3))),
    (mm.Softmax(), np.ones((4, 3))), (mm.Embedding(5, 2), np.array([0, 1, 1, 4])), (mm.MLP(3, (2, 1)), np.ones((4, 3))),
    (mm.Dropout(0.5), np.ones((4, 3))), (mm.Gate(3, 2), np.ones((4, 3))), (mm.Experts(3, 2, (2,)), np.ones((4, 3))),
], ids=lambda value: type(value).__name__ if isinstance(value, Module) else "")
def test_an_upstream_gradient_of_the_wrong_shape_is_named(block, x):
    """A (N,) where the block returned (N, 1) would broadcast silently; backward refuses it by name."""
    out = block.forward(x)
    expected = rf"{type(block).__name__}\.backward expects \w+ of shape {re.escape(str(out.shape))}.*got \(4,\)"
    with pytest.raises(ValueError, match=expected):
        block.backward(np.ones(4))


def test_adding_into_a_gradient_through_the_view_works_in_place():
    layer = mm.Linear(2, 2)
    grad = layer.grads["W"]
    layer.grads["W"] += 1.0                                    # += assigns the same array back: allowed
    assert layer.grads["W"] is grad and (grad == 1.0).all()
