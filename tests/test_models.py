import itertools

import numpy as np
import pytest

import minimoe as mm
from minimoe.gradcheck import THRESHOLD_MODEL, settle_relu_units

from .helpers import assert_gradients, assert_step_gradients

D = 5
TASK_SETS = {1: [("regression",), ("binary",)],
             2: [("regression", "regression"), ("binary", "binary"), ("binary", "regression")],
             3: [("binary", "regression", "binary")]}


def task_sets():
    return [tasks for sets in TASK_SETS.values() for tasks in sets]


def build(kind, tasks, n_experts=4, depth=1, seed=0, dtype=np.float64):
    units = (6, 5)[:depth]
    towers = (4, 3)[:depth]
    if kind == "SharedBottom":
        return mm.SharedBottom(D, bottom_units=units, tower_units=towers, tasks=tasks, seed=seed, dtype=dtype)
    cls = mm.OMoE if kind == "OMoE" else mm.MMoE
    gate_units = (4, 3)[:depth - 1]                               # depth 1: linear gate; depth 2: one hidden
    return cls(D, n_experts=n_experts, expert_units=units, tower_units=towers, gate_units=gate_units,
               tasks=tasks, seed=seed, dtype=dtype)


MATRIX = [("SharedBottom", tasks, 1, depth) for tasks in task_sets() for depth in (1, 2)] + \
         [(kind, tasks, e, depth) for kind in ("OMoE", "MMoE") for tasks in task_sets()
          for e, depth in itertools.product((1, 4), (1, 2))]


@pytest.mark.parametrize("kind, tasks, n_experts, depth", MATRIX,
                         ids=[f"{k}-{'+'.join(t)}-E{e}-depth{d}" for k, t, e, d in MATRIX])
def test_model_gradients(kind, tasks, n_experts, depth, rng):
    model = build(kind, tasks, n_experts, depth, seed=rng)
    report = assert_gradients(model, rng.standard_normal((16, D)), threshold=THRESHOLD_MODEL)
    assert set(model.params) | {"input"} <= set(report)


@pytest.mark.parametrize("kind", ["SharedBottom", "OMoE", "MMoE"])
def test_model_gradients_through_the_loss(kind, rng):
    """The whole chain a training step runs, by the function fit calls: forward, MultiTaskLoss,
    backward on the training path, on mixed tasks."""
    tasks = ("binary", "regression")
    model = build(kind, tasks, seed=rng)
    X = rng.standard_normal((16, D))
    Y = np.stack([rng.integers(0, 2, 16), rng.standard_normal(16)], axis=1)
    assert_step_gradients(model, mm.MultiTaskLoss(tasks, weights=[0.7, 1.3]), X, Y)


def test_mmoe_gradients_with_saturated_gates(rng):
    model = build("MMoE", ("binary", "regression"), seed=rng)
    for k in range(2):
        model.params[f"levels.0.gates.task{k}.W"][...] *= 1000.0   # one-hot gates
    X = rng.standard_normal((6, D))
    assert np.mean(model.gate_weights(X).max(axis=2) > 1 - 1e-12) >= 0.75   # most rows one-hot
    assert_gradients(model, X, floor=1.0, threshold=THRESHOLD_MODEL)   # gate gradients ~0: compare absolutely


def test_mmoe_gradients_at_logits_of_plus_minus_50(rng):
    model = build("MMoE", ("binary", "binary"), seed=rng)
    X = rng.standard_normal((16, D))
    settle_relu_units(model, X)                                 # before the rescaling it would undo
    scores = model.forward(X)
    for k in range(2):                                            # rescale the last tower layer: max |logit| = 50
        for name in ("W", "b"):
            model.params[f"towers.{k}.layers.2.{name}"][...] *= 50.0 / np.abs(scores[:, k]).max()
    scores = model.forward(X)
    assert np.abs(scores).max() > 45
    Y = (scores < 0).astype(float)                                # wrong on purpose: the loss is large
    loss = mm.MultiTaskLoss(("binary", "binary"))
    loss.forward(scores, Y)
    assert_gradients(model, X, dout=loss.backward(), threshold=THRESHOLD_MODEL, settle=False)


def test_mmoe_with_one_task_equals_omoe(rng):
    mmoe = mm.MMoE(D, n_experts=3, expert_units=(4,), tower_units=(3,), tasks=("binary",), seed=1)
    omoe = mm.OMoE(D, n_experts=3, expert_units=(4,), tower_units=(3,), tasks=("binary",), seed=2)
    # One task: MMoE's gate "task0" is OMoE's gate "shared"; everything else has the same name.
    for name, value in mmoe.params.items():
        omoe.params[name.replace("gates.task0.", "gates.shared.")][...] = value
    X, dscores = rng.standard_normal((7, D)), rng.standard_normal((7, 1))
    np.testing.assert_array_equal(mmoe.forward(X), omoe.forward(X))
    np.testing.assert_array_equal(mmoe.backward(dscores), omoe.backward(dscores))
    for name in mmoe.grads:
        np.testing.assert_array_equal(mmoe.grads[name], omoe.grads[name.replace("gates.task0.", "gates.shared.")])


def test_omoe_with_one_expert_is_a_shared_bottom(rng):
    omoe = mm.OMoE(D, n_experts=1, expert_units=(6, 4), tower_units=(3,), seed=1)
    bottom = mm.SharedBottom(D, bottom_units=(6, 4), tower_units=(3,), seed=2)
    for layer in range(2):
        bottom.params[f"bottom.layers.{2 * layer}.W"][...] = omoe.params[f"levels.0.experts.shared.W{layer}"][0]
        bottom.params[f"bottom.layers.{2 * layer}.b"][...] = omoe.params[f"levels.0.experts.shared.b{layer}"][0]
    for name in bottom.params:
        if name.startswith("towers."):
            bottom.params[name][...] = omoe.params[name]
    X = rng.standard_normal((7, D))
    np.testing.assert_allclose(omoe.gate_weights(X), 1.0)         # one expert: the gate is always 1
    np.testing.assert_allclose(omoe.forward(X), bottom.forward(X), rtol=1e-12)


def test_omoe_shares_its_gate_and_mmoe_has_one_per_task(rng):
    X = rng.standard_normal((4, D))
    omoe, mmoe = build("OMoE", ("binary",) * 3), build("MMoE", ("binary",) * 3)
    g = omoe.gate_weights(X)
    assert g.shape == (3, 4, 4) and np.array_equal(g[0], g[2])
    assert len(omoe.levels[0].gates) == 1 and len(mmoe.levels[0].gates) == 3
    assert mmoe.gate_weights(X).shape == (3, 4, 4)


def test_predict_gives_probabilities_for_binary_tasks(rng):
    model = build("MMoE", ("binary", "regression"))
    X = rng.standard_normal((5, D))
    scores, predictions = model.forward(X), model.predict(X)
    np.testing.assert_allclose(predictions[:, 0], 1 / (1 + np.exp(-scores[:, 0])))
    np.testing.assert_array_equal(predictions[:, 1], scores[:, 1])


@pytest.mark.parametrize("kind", ["SharedBottom", "OMoE", "MMoE"])
def test_same_seed_same_model(kind, rng):
    a, b = build(kind, ("binary", "regression"), seed=3), build(kind, ("binary", "regression"), seed=3)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    X = rng.standard_normal((4, D))
    np.testing.assert_array_equal(a.forward(X), b.forward(X))


@pytest.mark.parametrize("kind", ["SharedBottom", "OMoE", "MMoE"])
def test_float32_models_stay_float32(kind, rng):
    model = build(kind, ("binary", "regression"), dtype=np.float32)
    scores = model.forward(rng.standard_normal((4, D)))          # float64 X is cast to the model's dtype
    assert scores.dtype == np.float32
    assert model.backward(np.ones_like(scores)).dtype == np.float32
    assert all(v.dtype == np.float32 for v in list(model.params.values()) + list(model.grads.values()))


def test_parameter_counts_match_the_paper_setup():
    sb = mm.SharedBottom(100, bottom_units=(113,), tower_units=(8,))
    mmoe = mm.MMoE(100, n_experts=8, expert_units=(16,), tower_units=(8,))
    assert sb.n_params() == 100 * 113 + 113 + 2 * (113 * 8 + 8 + 8 + 1)
    assert mmoe.n_params() == 8 * (100 * 16 + 16) + 2 * (100 * 8 + 8) + 2 * (16 * 8 + 8 + 8 + 1)


class TestBadInput:
    model = mm.MMoE(D, n_experts=2, expert_units=(3,), tower_units=(2,), tasks=("binary", "regression"))

    @pytest.mark.parametrize("X, error, match", [
        (np.zeros(D), ValueError, r"X must be 2-D \(rows, features\), got shape \(5,\)"),
        (np.zeros((3, D + 1)), ValueError, "X must have 5 features, got 6"),
        (np.zeros((0, D)), ValueError, "X must have at least one row"),
        (np.full((2, D), np.nan), ValueError, "X must be finite, found nan at row 0, column 0"),
        (np.array([[0, 1, 2, 3, np.inf]]), ValueError, "X must be finite, found inf at row 0, column 4"),
        (np.array([["a"] * D]), TypeError, "X must hold real numbers"),
        (np.ones((2, D), dtype=bool), TypeError, "X must hold real numbers"),
    ])
    def test_bad_inputs(self, X, error, match):
        with pytest.raises(error, match=match):
            self.model.forward(X)
        with pytest.raises(error, match=match):
            self.model.predict(X)

    def test_backward_checks_its_gradient(self):
        self.model.forward(np.zeros((3, D)))
        with pytest.raises(ValueError, match=r"dscores must have shape \(3, 2\)"):
            self.model.backward(np.zeros((4, 2)))

    def test_backward_before_forward(self):
        with pytest.raises(RuntimeError, match="backward needs the forward pass just before it"):
            mm.SharedBottom(D).backward(np.zeros((1, 2)))

    def test_backward_after_predict_is_refused(self, rng):
        X = rng.standard_normal((3, D))
        self.model.forward(X)
        self.model.predict(X)                                        # overwrites forward's caches
        with pytest.raises(RuntimeError, match="predict and gate_weights replace"):
            self.model.backward(np.zeros((3, 2)))

    @pytest.mark.parametrize("kwargs, error, match", [
        (dict(n_experts=0), ValueError, "n_experts must be >= 1, got 0"),
        (dict(n_experts=2.0), TypeError, "n_experts must be a positive int"),
        (dict(expert_units=()), ValueError, "expert_units must hold at least one layer width"),
        (dict(expert_units=(4, 0)), ValueError, r"expert_units\[1\] must be >= 1"),
        (dict(tasks=("binary", "click")), ValueError,
         r"tasks\[1\] must be one of \('binary', 'regression'\) or a Task"),
        (dict(tasks="binary"), TypeError, "tasks must be a tuple"),
        (dict(tasks=()), ValueError, "tasks must name at least one task"),
        (dict(task_names=("a",)), ValueError, "task_names must have one name per task"),
        (dict(n_features=0), ValueError, "n_features must be >= 1"),
        (dict(dtype=np.float16), ValueError, "dtype must be float32 or float64"),
        (dict(seed=-1), ValueError, "seed must be >= 0"),
        (dict(seed="a"), TypeError, "seed must be an int or a numpy Generator"),
    ])
    def test_bad_construction(self, kwargs, error, match):
        arguments = dict(n_features=D, tasks=("binary", "regression")) | kwargs
        with pytest.raises(error, match=match):
            mm.MMoE(**arguments)

    def test_bad_bottom_units(self):
        with pytest.raises(ValueError, match=r"bottom_units\[1\] must be >= 1, got 0"):
            mm.SharedBottom(D, bottom_units=(4, 0))
        with pytest.raises(TypeError, match="bottom_units must be a tuple of positive ints"):
            mm.SharedBottom(D, bottom_units=8)

    def test_caller_arrays_are_not_modified(self, rng):
        X, dscores = rng.standard_normal((4, D)), rng.standard_normal((4, 2))
        X_before, d_before = X.copy(), dscores.copy()
        self.model.forward(X)
        self.model.backward(dscores)
        self.model.predict(X)
        np.testing.assert_array_equal(X, X_before)
        np.testing.assert_array_equal(dscores, d_before)


@pytest.mark.parametrize("kind", ["SharedBottom", "OMoE", "MMoE"])
def test_skipping_the_input_gradient_leaves_parameter_gradients_unchanged(kind, rng):
    model = build(kind, ("binary", "regression"), depth=2, seed=rng)
    X, dscores = rng.standard_normal((5, D)), rng.standard_normal((5, 2))
    model.forward(X)
    model.zero_grad()
    assert model.backward(dscores) is not None
    full = {name: grad.copy() for name, grad in model.grads.items()}
    model.zero_grad()
    assert model.backward(dscores, input_grad=False) is None
    for name, grad in model.grads.items():
        np.testing.assert_array_equal(grad, full[name], err_msg=name)
