"""CGC and PLE (Tang et al., RecSys 2020): gradients through every configuration, the three
reductions, gates over subsets, the structure they declare, and bad arguments."""

import itertools

import numpy as np
import pytest

import minimoe as mm
from minimoe.gradcheck import THRESHOLD_MODEL
from minimoe.models import CGC, PLE

from .helpers import assert_gradients, assert_training_pass

D = 5
TASKS = {1: ("binary",), 2: ("binary", "regression"), 3: ("regression", "binary", "regression")}


CONFIGS = [(t, levels, task_experts, shared, gate_units)
           for t, levels, task_experts, shared, gate_units in itertools.product(
               (1, 2, 3), (1, 2, 3), (0, 1, 2), (1, 2), ((), (3,)))
           if not (levels == 3 and gate_units) and not (t == 3 and levels == 3)]


@pytest.mark.parametrize("n_tasks, n_levels, n_task_experts, n_shared, gate_units", CONFIGS,
                         ids=[f"T{t}-L{lv}-task{te}-shared{s}-gate{len(g)}" for t, lv, te, s, g in CONFIGS])
def test_ple_gradients(n_tasks, n_levels, n_task_experts, n_shared, gate_units, rng):
    model = PLE(D, n_levels=n_levels, n_shared_experts=n_shared, n_task_experts=n_task_experts,
                expert_units=(4,), tower_units=(3,), tasks=TASKS[n_tasks], gate_units=gate_units, seed=rng)
    report = assert_gradients(model, rng.standard_normal((16, D)), threshold=THRESHOLD_MODEL)
    assert set(model.params) | {"input"} <= set(report)


@pytest.mark.parametrize("kind", ["CGC", "PLE"])
def test_gradients_with_an_input_layer_two_layer_experts_and_uneven_task_experts(kind, rng):
    inputs = mm.FeatureInput([4, 3], n_numeric=2, embedding_dims=2, seed=0, embedding_std=0.5)
    extra = {"n_levels": 2} if kind == "PLE" else {}
    model = getattr(mm, kind)(None, n_shared_experts=2, n_task_experts=[2, 0, 1], expert_units=(6, 4),
                              tower_units=(4,), tasks=TASKS[3], inputs=inputs, seed=1, **extra)
    X = mm.FeatureBatch(rng.integers(0, [4, 3], size=(16, 2)), rng.standard_normal((16, 2)))
    assert_gradients(model, X, threshold=THRESHOLD_MODEL)


@pytest.mark.parametrize("balance_weight, expert_dropout", [(0.6, 0.0), (0.4, 0.3)])
def test_training_pass_with_the_remedies_through_two_levels(balance_weight, expert_dropout, rng):
    model = PLE(D, n_levels=2, n_shared_experts=2, n_task_experts=1, expert_units=(4,), tower_units=(3,),
                tasks=TASKS[2], seed=2, balance_weight=balance_weight, expert_dropout=expert_dropout)
    assert_training_pass(model, rng.standard_normal((16, D)), threshold=THRESHOLD_MODEL)
    assert model.auxiliary_loss() > 0
    # Level 1's balancing gradient reaches level 0's parameters through level 0's backward pass.
    model.zero_grad()
    model.forward(rng.standard_normal((8, D)))
    model.backward_auxiliary()
    assert np.abs(model.grads["levels.0.experts.shared.W0"]).max() > 0


def test_cgc_with_no_task_experts_is_mmoe_over_the_shared_experts(rng):
    cgc = CGC(D, n_shared_experts=3, n_task_experts=0, expert_units=(4,), tower_units=(3,), tasks=TASKS[2],
              gate_units=(2,), seed=7)
    mmoe = mm.MMoE(D, n_experts=3, expert_units=(4,), tower_units=(3,), tasks=TASKS[2], gate_units=(2,), seed=7)
    assert list(cgc.params) == list(mmoe.params)
    for name, value in cgc.params.items():
        np.testing.assert_array_equal(value, mmoe.params[name])          # the same seed: the same weights
    X, dscores = rng.standard_normal((9, D)), rng.standard_normal((9, 2))
    np.testing.assert_allclose(cgc.forward(X), mmoe.forward(X), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cgc.backward(dscores), mmoe.backward(dscores), rtol=1e-12, atol=1e-12)
    for name, grad in cgc.grads.items():
        np.testing.assert_allclose(grad, mmoe.grads[name], rtol=1e-12, atol=1e-12, err_msg=name)


def test_ple_with_one_level_is_cgc(rng):
    ple = PLE(D, n_levels=1, n_shared_experts=2, n_task_experts=[1, 2], expert_units=(4, 3), tower_units=(3,),
              tasks=TASKS[2], seed=5)
    cgc = CGC(D, n_shared_experts=2, n_task_experts=[1, 2], expert_units=(4, 3), tower_units=(3,),
              tasks=TASKS[2], seed=5)
    assert list(ple.params) == list(cgc.params)
    X, dscores = rng.standard_normal((9, D)), rng.standard_normal((9, 2))
    np.testing.assert_allclose(ple.forward(X), cgc.forward(X), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ple.backward(dscores), cgc.backward(dscores), rtol=1e-12, atol=1e-12)
    for name, grad in ple.grads.items():
        np.testing.assert_allclose(grad, cgc.grads[name], rtol=1e-12, atol=1e-12, err_msg=name)


def test_cgc_with_only_task_experts_is_independent_single_task_models(rng):
    """No shared experts and one expert per task: task k's score is a single-task model of its own
    expert and tower (its gate over one expert is always 1), and no gradient crosses tasks."""
    cgc = CGC(D, n_shared_experts=0, n_task_experts=1, expert_units=(4, 3), tower_units=(3,), tasks=TASKS[3],
              seed=3)
    X = rng.standard_normal((9, D))
    scores = cgc.forward(X)
    for k, task in enumerate(TASKS[3]):
        alone = mm.SharedBottom(D, bottom_units=(4, 3), tower_units=(3,), tasks=(task,), seed=0)
        for layer in range(2):
            alone.params[f"bottom.layers.{2 * layer}.W"][...] = cgc.params[f"levels.0.experts.task{k}.W{layer}"][0]
            alone.params[f"bottom.layers.{2 * layer}.b"][...] = cgc.params[f"levels.0.experts.task{k}.b{layer}"][0]
        for name, value in alone.params.items():
            if name.startswith("towers.0."):
                value[...] = cgc.params[name.replace("towers.0.", f"towers.{k}.")]
        np.testing.assert_allclose(scores[:, k:k + 1], alone.forward(X), rtol=1e-12, atol=1e-12)
        cgc.zero_grad()
        only_k = np.zeros_like(scores)
        only_k[:, k] = rng.standard_normal(len(X))
        cgc.backward(only_k)
        for name, grad in cgc.grads.items():
            own = f"task{k}." in name or name.startswith(f"towers.{k}.")
            assert own or not grad.any(), f"task {k}'s gradient reached {name}"
    weights = cgc.gate_weights(X)                                        # (T, N, E): task k sees expert k only
    np.testing.assert_array_equal(weights, np.broadcast_to(np.eye(3)[:, None, :], weights.shape))


def test_gate_weights_show_unseen_experts_as_exact_zeros(rng):
    model = PLE(D, n_levels=2, n_shared_experts=2, n_task_experts=[1, 2], expert_units=(4,), tower_units=(3,),
                tasks=TASKS[2], seed=0)
    X = rng.standard_normal((20, D))
    for level in (0, 1):
        weights = model.gate_weights(X, level=level)                     # (T, N, E)
        groups = model.expert_groups(level)
        assert weights.shape == (2, 20, 5)
        np.testing.assert_allclose(weights.sum(axis=2), 1.0, rtol=1e-12)
        for k in range(2):
            unseen = [c for name, cols in groups.items() if name not in ("shared", f"task{k}") for c in cols]
            assert (weights[k][:, unseen] == 0.0).all() and (weights[k][:, groups["shared"]] > 0).all()
    names, shares = mm.analysis.group_usage(model, X, level=1)
    assert names == ["shared", "task0", "task1"] and shares.shape == (2, 3)
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    assert shares[0, 2] == 0.0 and shares[1, 1] == 0.0
    assert model.expert_outputs(X, level=0).shape == (20, 5, 4)


def test_shared_parameters_follow_the_structure():
    cgc = CGC(D, n_shared_experts=2, n_task_experts=1, expert_units=(4,), tasks=TASKS[2])
    assert cgc.shared_parameters() == ["levels.0.experts.shared.W0", "levels.0.experts.shared.b0"]
    ple = PLE(D, n_levels=2, n_shared_experts=2, n_task_experts=1, expert_units=(4,), tasks=TASKS[2])
    shared = set(ple.shared_parameters())
    # Below the last level, the shared gate mixes every expert into the shared stream that every
    # task reads next: level 0's task experts and shared gate are reached by every task.
    assert {"levels.0.experts.task0.W0", "levels.0.experts.task1.W0", "levels.0.gates.shared.W",
            "levels.1.experts.shared.W0"} <= shared
    assert not any(".gates.task" in name or "levels.1.experts.task" in name for name in shared)
    assert ple.shared_parameters(last_layer=True) == ["levels.1.experts.shared.W0"]
    with pytest.raises(ValueError, match="no expert group that every task reaches"):
        CGC(D, n_shared_experts=0, n_task_experts=1, tasks=TASKS[2]).shared_parameters(last_layer=True)


@pytest.mark.parametrize("kind", ["CGC", "PLE"])
def test_save_load_float32_and_training(kind, tmp_path, rng):
    model = getattr(mm, kind)(D, n_shared_experts=1, n_task_experts=[1, 2], expert_units=(6,), tower_units=(3,),
                              tasks=TASKS[2], seed=0, dtype=np.float32)
    X = rng.standard_normal((300, D))
    Y = np.column_stack([(X[:, 0] > 0).astype(float), X[:, 1] * 2])
    history = mm.fit(model, X, Y, epochs=10, batch_size=32, optimizer=mm.Adam(lr=1e-2), progress=False)
    assert history.train_total[-1] < 0.7 * history.train_total[0]
    scores = model.forward(X[:4])
    assert scores.dtype == np.float32 and all(v.dtype == np.float32 for v in model.params.values())
    model.save(tmp_path / "m.npz")
    loaded = mm.load(tmp_path / "m.npz")
    assert type(loaded) is type(model) and loaded.config == model.config
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_shared_experts=-1), "n_shared_experts must be an int >= 0"),
    (dict(n_task_experts=[1]), r"n_task_experts must be an int or one count per task \(2\)"),
    (dict(n_task_experts=[1, -2]), r"n_task_experts\[1\] must be an int >= 0"),
    (dict(n_shared_experts=0, n_task_experts=[1, 0]), "task 1 has no expert to mix"),
    (dict(n_levels=0), "n_levels must be >= 1"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PLE(D, **{"tasks": TASKS[2], **kwargs})
