"""minimoe trains as PyTorch does: the training step ``fit`` takes (``step_gradients`` and
``mm.Adam``), run on the same global batches as ``minimoe.torch.train_steps`` (autograd and
``torch.optim.Adam``), ends at the same parameters after a hundred steps, in float64.

This is the evidence that a model's behaviour under training (for example ESMM's on a small funnel,
docs/funnels.md) belongs to the model and the data, not to minimoe's gradients or optimizer."""

import numpy as np
import pytest

import minimoe as mm
from minimoe.train import step_gradients

pytest.importorskip("torch")
from minimoe.torch import global_batches, train_steps  # noqa: E402

STEPS, BATCH, LR = 100, 64, 1e-2


def _funnel_esmm():
    X, Y = mm.data.make_funnel(1_500, cardinalities=(50, 12, 5), seed=3)
    inputs = mm.FeatureInput([50, 12, 5], n_numeric=X.numeric.shape[1], embedding_dims=4, seed=1)
    return mm.ESMM(None, tower_units=(8,), inputs=inputs, seed=2), X, mm.data.esmm_labels(Y)


def _mmoe_with_missing_labels():
    X, Y = mm.data.make_mixed_tasks(1_500, n_features=10, seed=4)
    Y[Y[:, 0] == 0, 1] = np.nan                           # a duration only after a click
    Y[:, 1] = np.log1p(Y[:, 1])
    return mm.MMoE(10, n_experts=3, expert_units=(6,), tower_units=(4,), tasks=("binary", "regression"),
                   seed=5), X, Y


def minimoe_steps(model, X, Y, batches):
    """The steps ``fit`` takes, on the given batches of row indices."""
    loss, optimizer = mm.MultiTaskLoss(model.tasks), mm.Adam(lr=LR)
    X, Y = model.check_inputs(X), model.check_targets("Y", Y, len(X))
    for rows in batches:
        step_gradients(model, loss, X[rows], Y[rows])
        optimizer.step(model.params, model.grads)
    return model


@pytest.mark.parametrize("build", [_funnel_esmm, _mmoe_with_missing_labels], ids=["ESMM funnel", "MMoE NaN labels"])
def test_minimoe_and_autograd_with_adam_end_at_the_same_parameters(build):
    model, X, Y = build()
    start = {name: array.copy() for name, array in model.params.items()}
    run = train_steps(model, X, Y, steps=STEPS, batch_size=BATCH, optimizer="adam", lr=LR, seed=7)
    minimoe_steps(model, X, Y, global_batches(len(Y), BATCH, STEPS, seed=7))
    trained = dict(run.module.named_parameters())
    moved = max(np.abs(model.params[name] - start[name]).max() for name in start)
    gap = max(np.abs(model.params[name] - trained[name].detach().numpy()).max() for name in start)
    assert moved > 0.05, f"training moved the parameters by only {moved:.3g}"
    assert gap < 1e-9, f"after {STEPS} Adam steps minimoe and PyTorch differ by {gap:.3g} (moved {moved:.3g})"
