"""Autograd as a second oracle: the models and losses of the parity tests, and the measurement of
how far minimoe's forward pass and hand-written gradients are from PyTorch's (float64).

``python -m tests.torch_parity`` prints the largest differences per model and loss.

For one model, loss and batch, ``measure``:

1. settles the ReLU units (``settle_relu_units``) so that no gradient is trivially zero, and
   converts the model with ``to_torch``;
2. compares the scores in evaluation mode;
3. runs one training step's gradients through minimoe's own training path
   (``train.step_gradients``: forward, loss, auxiliary loss, backward) with the expert dropout
   drawn once and frozen, puts the same dropout masks into the torch module, and runs the same
   objective, loss(scores, Y) + auxiliary_loss(), through autograd;
4. compares the training scores, the objective, the auxiliary loss and every parameter gradient,
   the loss's own (``log_variance``) included.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

import minimoe as mm
from minimoe.gradcheck import frozen_dropout, settle_relu_units
from minimoe.torch import to_torch, torch_inputs
from minimoe.train import step_gradients

N_ROWS = 16
N_FEATURES = 6


def feature_input(seed: int) -> mm.FeatureInput:
    """Three id columns and two numeric ones: D = 2 + 3 + 2 + 2 = 9."""
    return mm.FeatureInput([5, 3, 7], n_numeric=2, embedding_dims=[2, 3, 2], seed=seed)


# name -> a function of nothing that builds the model (float64)
MODELS = {
    "SharedBottom": lambda: mm.SharedBottom(N_FEATURES, bottom_units=(7, 5), tower_units=(3,),
                                            tasks=("binary", "regression"), seed=2),
    "SharedBottom, no bottom, inputs": lambda: mm.SharedBottom(None, bottom_units=(), tower_units=(4,),
                                                               tasks=("binary", "regression", "binary"),
                                                               inputs=feature_input(3), seed=3),
    "OMoE, gate hidden layer": lambda: mm.OMoE(N_FEATURES, n_experts=3, expert_units=(5,), tower_units=(),
                                               gate_units=(4,), tasks=("regression", "binary"), seed=1),
    "MMoE, gate hidden layer": lambda: mm.MMoE(N_FEATURES, n_experts=4, expert_units=(5, 3), tower_units=(4,),
                                               gate_units=(3,), tasks=("binary", "regression", "binary"), seed=0),
    "MMoE, inputs, dropout, balancing": lambda: mm.MMoE(None, n_experts=4, expert_units=(5,), tower_units=(3,),
                                                        tasks=("binary", "regression"), inputs=feature_input(4),
                                                        expert_dropout=0.3, balance_weight=0.1, seed=4),
    "CGC, task experts [2, 0, 1], balancing": lambda: mm.CGC(N_FEATURES, n_shared_experts=2, n_task_experts=[2, 0, 1],
                                                             expert_units=(4,), tower_units=(3,), gate_units=(3,),
                                                             tasks=("binary", "regression", "regression"),
                                                             balance_weight=0.05, seed=5),
    "CGC, no shared experts": lambda: mm.CGC(N_FEATURES, n_shared_experts=0, n_task_experts=1, expert_units=(4,),
                                             tower_units=(3,), tasks=("binary", "regression"), seed=6),
    "PLE, 3 levels, dropout, balancing": lambda: mm.PLE(N_FEATURES, n_levels=3, n_shared_experts=2,
                                                        n_task_experts=[1, 0, 2], expert_units=(4, 3),
                                                        tower_units=(3,), gate_units=(3,),
                                                        tasks=("binary", "regression", "regression"),
                                                        balance_weight=0.1, expert_dropout=0.25, seed=7),
    "PLE, inputs": lambda: mm.PLE(None, n_levels=2, n_shared_experts=1, n_task_experts=2, expert_units=(4,),
                                  tower_units=(2,), tasks=("binary", "binary"), inputs=feature_input(8), seed=8),
    "ESMM (paper: shared inputs), inputs": lambda: mm.ESMM(None, tower_units=(4,), inputs=feature_input(9), seed=9),
    "ESMM, shared bottom": lambda: mm.ESMM(N_FEATURES, bottom_units=(6,), tower_units=(4,), seed=10),
    "ESMM-NS (none), inputs": lambda: mm.ESMM(None, backbone="none", tower_units=(4,), inputs=feature_input(11),
                                              seed=11),
    "ESMM, MMoE, dropout, balancing": lambda: mm.ESMM(N_FEATURES, backbone="mmoe", n_experts=3, expert_units=(4,),
                                                      tower_units=(3,), gate_units=(2,), balance_weight=0.1,
                                                      expert_dropout=0.2, seed=12),
    "ESMM, CGC, inputs": lambda: mm.ESMM(None, backbone="cgc", n_shared_experts=1, n_task_experts=[1, 2],
                                         expert_units=(4,), tower_units=(3,), inputs=feature_input(13), seed=13),
    "ESMM, PLE": lambda: mm.ESMM(N_FEATURES, backbone="ple", n_levels=2, n_shared_experts=2, n_task_experts=1,
                                 expert_units=(4,), tower_units=(3,), seed=14),
}

# The losses every model is checked with (ESMM's: the funnel loss, on (click, click and conversion);
# there only the click can be missing). The load-balancing loss is added wherever a model balances.
LOSSES = ("plain", "missing labels", "uncertainty-weighted")


def make_inputs(model, rng: np.random.Generator, n: int = N_ROWS):
    """X for the model: (n, D) normal features, or a FeatureBatch for its input layer."""
    layer = next((module for module in model.modules() if isinstance(module, mm.FeatureInput)), None)
    if layer is None:
        return rng.standard_normal((n, model.n_features))
    ids = np.stack([rng.integers(0, c, n) for c in layer.cardinalities], axis=1)              # (n, C)
    return mm.FeatureBatch(ids, rng.standard_normal((n, layer.n_numeric)))


def make_labels(model, rng: np.random.Generator, missing: float = 0.0, n: int = N_ROWS) -> np.ndarray:
    """(n, T) labels: 0/1 for binary tasks, normal values for regression; for ESMM (click, click and
    conversion); with ``missing`` > 0 about that share of each column is NaN (never a whole column;
    for ESMM, of the clicks without a conversion only)."""
    if isinstance(model, mm.ESMM):
        click = rng.integers(0, 2, n).astype(float)
        Y = np.column_stack([click, click * rng.integers(0, 2, n)])
        if missing:            # only the click can be missing (the CTCVR label exists for every impression),
            candidates = np.flatnonzero(Y[1:, 1] == 0) + 1              # and not where a conversion shows it
            holes = rng.choice(candidates, size=max(1, round(missing * len(candidates))), replace=False)
            Y[holes, 0] = np.nan
        return Y
    Y = np.column_stack([rng.integers(0, 2, n).astype(float) if task.kind == "binary" else rng.standard_normal(n)
                         for task in model.tasks])
    if missing:
        holes = rng.random(Y.shape) < missing
        holes[0] = False                                                 # every task keeps a labelled row
        Y[holes] = np.nan
    return Y


def make_loss(model, kind: str):
    if kind == "uncertainty-weighted":
        return mm.UncertaintyWeightedLoss(model.tasks, initial_log_variance=np.linspace(-0.4, 0.3, model.n_tasks))
    return mm.MultiTaskLoss(model.tasks, weights=np.linspace(0.5, 1.5, model.n_tasks))


@dataclass
class Parity:
    """The largest differences of one model and loss: scores (evaluation and training mode), the
    objective, the auxiliary loss, and the gradients (absolute, and relative to each array's
    largest entry), with the parameter where the relative one is largest."""

    scores_eval: float
    scores_train: float
    objective: float
    auxiliary: float
    gradient_abs: float
    gradient_rel: float
    worst_parameter: str
    n_parameters: int
    auxiliary_value: float      # the load-balancing loss itself: > 0 where the model balances
    dropped: int                # experts dropped for some row in the frozen masks: > 0 with expert dropout
    missing: int                # missing (NaN) labels in the batch


def _dropout_masks_into(model, net) -> None:
    """minimoe's frozen dropout masks (1, N, E), one per mixture layer, into the torch layers of the same name."""
    layers = dict(net.named_modules())
    for name, module in model.named_modules():
        if isinstance(module, mm.MixtureLayer) and module.dropout.mask is not None:
            layers[name.rstrip(".")].dropout.frozen_mask = torch.from_numpy(module.dropout.mask.copy())


def measure(model, loss, X, Y) -> Parity:
    X, Y = model.check_inputs(X), model.check_targets("Y", Y, len(X))
    settle_relu_units(model, X)
    net = to_torch(model)
    inputs = torch_inputs(X, net)

    with model.mode(training=False):
        minimoe_eval = model.forward(X, check=False)
    with torch.no_grad():
        torch_eval = net.eval()(inputs).numpy()

    model.train()
    with frozen_dropout(model):
        model.forward(X, check=False)                        # draws the dropout masks, then frozen
        total, auxiliary = step_gradients(model, loss, X, Y)
        minimoe_train = model.forward(X, check=False)       # the same masks: the step's scores
    grads = {name: grad.copy() for name, grad in model.grads.items()}
    grads.update({f"loss.{name}": grad.copy() for name, grad in loss.grads.items()})

    net.train()
    _dropout_masks_into(model, net)
    criterion = to_torch(loss)
    torch_train = net(inputs)
    torch_auxiliary = net.auxiliary_loss()
    torch_total = criterion(torch_train, torch.as_tensor(Y)) + torch_auxiliary
    torch_total.backward()
    autograd = {name: p.grad for name, p in net.named_parameters()}
    autograd.update({f"loss.{name}": p.grad for name, p in criterion.named_parameters()})
    assert set(autograd) == set(grads), (sorted(autograd), sorted(grads))

    gradient_abs, gradient_rel, worst = 0.0, 0.0, ""
    for name, grad in grads.items():
        theirs = np.zeros_like(grad) if autograd[name] is None else autograd[name].numpy()
        gap = float(np.abs(grad - theirs).max())
        relative = gap / max(float(np.abs(grad).max()), float(np.abs(theirs).max()), 1e-300) if gap else 0.0
        gradient_abs = max(gradient_abs, gap)
        if relative >= gradient_rel:
            gradient_rel, worst = relative, name
    return Parity(scores_eval=float(np.abs(minimoe_eval - torch_eval).max()),
                  scores_train=float(np.abs(minimoe_train - torch_train.detach().numpy()).max()),
                  objective=abs(total - float(torch_total.detach())),
                  auxiliary=abs(auxiliary - float(torch_auxiliary.detach())),
                  gradient_abs=gradient_abs, gradient_rel=gradient_rel, worst_parameter=worst,
                  n_parameters=len(grads), auxiliary_value=auxiliary,
                  dropped=sum(int((m.dropout.mask == 0).sum()) for m in model.modules()
                              if isinstance(m, mm.MixtureLayer) and m.dropout.mask is not None),
                  missing=int(np.isnan(Y).sum()))


def run_case(model_name: str, loss_kind: str, seed: int = 0) -> Parity:
    model = MODELS[model_name]()
    rng = np.random.default_rng(seed)
    missing = 0.4 if loss_kind == "missing labels" else 0.0
    return measure(model, make_loss(model, loss_kind), make_inputs(model, rng), make_labels(model, rng, missing))


def cases():
    """(model name, loss kind) of every parity case: every model with every loss."""
    return [(model, loss) for model in MODELS for loss in LOSSES]


def main() -> None:
    torch.set_num_threads(1)
    print(f"{'model':<40}{'loss':<22}{'scores':>10}{'objective':>11}{'aux':>10}{'grad abs':>10}{'grad rel':>10}"
          f"  worst gradient")
    worst_scores, worst_rel = 0.0, 0.0
    for model_name, loss_kind in cases():
        p = run_case(model_name, loss_kind)
        scores = max(p.scores_eval, p.scores_train)
        worst_scores, worst_rel = max(worst_scores, scores), max(worst_rel, p.gradient_rel)
        print(f"{model_name:<40}{loss_kind:<22}{scores:10.1e}{p.objective:11.1e}{p.auxiliary:10.1e}"
              f"{p.gradient_abs:10.1e}{p.gradient_rel:10.1e}  {p.worst_parameter} ({p.n_parameters} arrays)")
    print(f"largest score difference {worst_scores:.1e}; largest relative gradient difference {worst_rel:.1e}")


if __name__ == "__main__":
    main()
