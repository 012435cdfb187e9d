"""DistributedDataParallel on two local processes trains the parameters that one process trains on
the same global batches (float64, up to rounding), and the result comes back into minimoe."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: pip install -e \".[torch]\"")

import minimoe as mm  # noqa: E402
from minimoe.torch import from_torch, global_batches, torch_inputs, train_distributed, train_steps  # noqa: E402

RELATIVE_LIMIT = 1e-10     # per parameter array: max |two processes - one| / max |one|


def _largest_relative_gap(a: torch.nn.Module, b: torch.nn.Module) -> float:
    theirs = dict(b.named_parameters())
    with torch.no_grad():
        return max(float((p - theirs[name]).abs().max() / theirs[name].abs().max()) for name, p in a.named_parameters())


@pytest.fixture(scope="module")
def mmoe_data():
    """Rows with a third of the labels missing, so that the two halves of a batch count different
    labelled rows (the case where dividing by each half's own count would be wrong)."""
    X, Y = mm.data.make_synthetic(1_200, n_features=12, correlation=0.5, seed=3)
    Y[np.random.default_rng(4).random(Y.shape) < 0.33] = np.nan
    return X, Y


@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.05), ("adam", 0.01)])
def test_two_processes_train_what_one_process_trains(mmoe_data, optimizer, lr):
    X, Y = mmoe_data
    model = mm.MMoE(12, n_experts=4, expert_units=(8,), tower_units=(4,), gate_units=(3,), seed=0)
    before = {name: value.copy() for name, value in model.params.items()}
    options = dict(steps=8, batch_size=128, optimizer=optimizer, lr=lr, seed=5)
    two = train_distributed(model, X, Y, world_size=2, **options)
    one = train_steps(model, X, Y, **options)
    assert all(np.array_equal(model.params[name], value) for name, value in before.items())   # model untouched
    assert _largest_relative_gap(two.module, one.module) < RELATIVE_LIMIT
    np.testing.assert_allclose(two.losses, one.losses, rtol=1e-12)
    assert _largest_relative_gap(two.module, train_steps(model, X, Y, **dict(options, steps=0)).module) > 1e-3

    from_torch(two.module, model)
    with torch.no_grad():
        torch_scores = two.module.eval()(torch_inputs(X, two.module)).numpy()
    np.testing.assert_allclose(model.predict_scores(X), torch_scores, rtol=0, atol=1e-12)
    assert set(mm.evaluate(model, X, Y)) == {"task0", "task1"}


def test_an_esmm_with_an_input_layer_trains_on_two_processes_too():
    X, Y = mm.data.make_funnel(1_024, seed=1)
    Y = mm.data.esmm_labels(Y)
    model = mm.ESMM(None, inputs=mm.FeatureInput(X.categorical.max(axis=0) + 1, X.numeric.shape[1], 4), seed=2)
    options = dict(steps=6, batch_size=256, optimizer="adam", lr=0.01)
    two = train_distributed(model, X, Y, **options)
    assert _largest_relative_gap(two.module, train_steps(model, X, Y, **options).module) < RELATIVE_LIMIT
    result = mm.evaluate(from_torch(two.module, model), X, Y)
    assert 0.0 < result["ctr"]["auc"] < 1.0


def test_global_batches_are_seeded_full_and_new_each_epoch():
    batches = global_batches(10, 4, steps=5, seed=1)
    assert [len(rows) for rows in batches] == [4] * 5
    assert all(np.array_equal(a, b) for a, b in zip(batches, global_batches(10, 4, steps=5, seed=1)))
    assert len(set(np.concatenate(batches[:2]))) == 8                  # an epoch never repeats a row
    with pytest.raises(ValueError, match="batch_size"):
        global_batches(10, 11, steps=1)


def test_the_training_options_are_checked(mmoe_data):
    X, Y = mmoe_data
    model = mm.MMoE(12, n_experts=2, expert_units=(3,), tower_units=(2,))
    with pytest.raises(ValueError, match="optimizer must be one of"):
        train_steps(model, X, Y, steps=1, batch_size=8, optimizer="lbfgs")
    with pytest.raises(ValueError, match="UncertaintyWeightedLoss"):
        train_steps(model, X, Y, steps=1, batch_size=8, loss=mm.UncertaintyWeightedLoss())
