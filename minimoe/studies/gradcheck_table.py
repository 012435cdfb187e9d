"""``minimoe gradcheck``: every building block and every model checked against central
differences in float64, one row per parameter. A learner's self-test after changing a backward."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..gradcheck import (
    THRESHOLD_BLOCK,
    THRESHOLD_MODEL,
    check_loss,
    check_module,
    check_training_pass,
    numerical_gradient,
    relative_error,
)
from ..heads import FunnelHead
from ..inputs import FeatureBatch, FeatureInput
from ..layers import MLP, Dropout, Embedding, Linear, ReLU, Sigmoid, Softmax
from ..losses import MultiTaskLoss
from ..models import CGC, ESMM, PLE, MMoE, OMoE, SharedBottom
from ..moe import Experts, Gate, balance_loss, balance_loss_backward
from ..weighting import GradNormLoss, UncertaintyWeightedLoss


def _away_from_zero(x: np.ndarray) -> np.ndarray:
    """Keep inputs 0.1 away from ReLU's kink, where the derivative does not exist."""
    return np.where(np.abs(x) < 0.1, np.copysign(0.1, x), x)


def cases(seed: int = 0) -> Iterator[tuple[str, object, object, float]]:
    """(label, module, input, threshold) for every block and model."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((6, 5))
    yield "Linear(5, 4)", Linear(5, 4, rng), x, THRESHOLD_BLOCK
    yield "ReLU", ReLU(), _away_from_zero(x), THRESHOLD_BLOCK
    yield "Sigmoid", Sigmoid(), 3 * x, THRESHOLD_BLOCK
    yield "Softmax", Softmax(), x, THRESHOLD_BLOCK
    yield "Embedding(5, 3), repeated ids", Embedding(5, 3, rng), np.array([0, 3, 3, 1, 3, 0]), THRESHOLD_BLOCK
    yield "MLP(5, (4, 3))", MLP(5, (4, 3), rng), x, THRESHOLD_BLOCK
    yield "Dropout(0.3), training mode (mask frozen)", Dropout(0.3, rng), x, THRESHOLD_BLOCK
    yield "Experts(5, E=4, (4, 3))", Experts(5, 4, (4, 3), rng), x, THRESHOLD_BLOCK
    yield "Gate(5, E=4, gate_units=(3,))", Gate(5, 4, (3,), rng), x, THRESHOLD_BLOCK
    tasks = ("binary", "regression")
    yield "SharedBottom", SharedBottom(5, (6, 4), (3,), tasks, seed=rng), x, THRESHOLD_MODEL
    yield "OMoE", OMoE(5, 3, (4,), (3,), tasks, gate_units=(3,), seed=rng), x, THRESHOLD_MODEL
    yield "MMoE", MMoE(5, 3, (4, 3), (3,), ("binary", "regression", "binary"), gate_units=(3,), seed=rng), \
        x, THRESHOLD_MODEL
    yield from extraction_cases(rng, x)
    yield from funnel_cases(rng, x)


def funnel_cases(rng, x) -> Iterator[tuple[str, object, object, float]]:
    """ESMM's head alone at logits up to +-50, and ESMM on a Shared-Bottom and on an MMoE backbone,
    with and without an input layer."""
    logits = 50.0 * rng.uniform(-1, 1, size=(6, 2))
    logits[:2] = [[50.0, 50.0], [50.0, -50.0]]
    yield "FunnelHead, logits up to +-50", FunnelHead(), logits, THRESHOLD_BLOCK
    for backbone, options in (("shared_bottom", {"bottom_units": (6,)}),
                              ("mmoe", {"n_experts": 3, "expert_units": (4,), "gate_units": (3,)})):
        yield f"ESMM on {backbone}", ESMM(5, backbone, (3,), seed=rng, **options), x, THRESHOLD_MODEL
        extreme = ESMM(5, backbone, (3,), seed=rng, **options)
        tower_logits = extreme.base.forward(x)                               # (N, 2): a and b
        for k in range(2):                                                   # rescale: max |a|, |b| = 50
            for name in ("W", "b"):
                extreme.params[f"base.towers.{k}.layers.2.{name}"][...] *= 50.0 / np.abs(tower_logits[:, k]).max()
        yield f"ESMM on {backbone}, logits up to +-50", extreme, x, THRESHOLD_MODEL
        inputs = FeatureInput([4, 3], n_numeric=2, embedding_dims=2, seed=rng, embedding_std=0.5)
        batch = FeatureBatch(rng.integers(0, [4, 3], size=(6, 2)), rng.standard_normal((6, 2)))
        yield f"ESMM on {backbone} with inputs=", ESMM(None, backbone, (3,), seed=rng, inputs=inputs, **options), \
            batch, THRESHOLD_MODEL


def extraction_cases(rng, x) -> Iterator[tuple[str, object, object, float]]:
    """CGC and PLE over T = 1, 2, 3 tasks, 1 to 3 levels, 0 to 2 task experts and 1 or 2 shared
    experts, with linear and hidden-layer gates, and with an input layer."""
    kinds = ("binary", "regression", "binary")
    for n_tasks, n_levels, task_experts, shared, gate_units in (
            (1, 1, 0, 1, ()), (2, 1, 1, 2, ()), (3, 1, 2, 1, (3,)), (2, 1, [2, 0], 1, ()),
            (1, 2, 2, 2, (3,)), (2, 2, 1, 1, ()), (3, 2, 0, 2, (3,)), (2, 3, 1, 2, ()), (3, 3, 2, 1, ())):
        label = (f"PLE {n_levels} levels" if n_levels > 1 else "CGC") + \
            f", T={n_tasks}, task experts {task_experts}, shared {shared}" + (", hidden gates" if gate_units else "")
        model = PLE(5, n_levels, shared, task_experts, (4,), (3,), kinds[:n_tasks], gate_units=gate_units, seed=rng) \
            if n_levels > 1 else CGC(5, shared, task_experts, (4,), (3,), kinds[:n_tasks], gate_units=gate_units,
                                     seed=rng)
        yield label, model, x, THRESHOLD_MODEL
    inputs = FeatureInput([4, 3], n_numeric=2, embedding_dims=2, seed=rng, embedding_std=0.5)
    batch = FeatureBatch(rng.integers(0, [4, 3], size=(6, 2)), rng.standard_normal((6, 2)))
    yield "PLE 2 levels with inputs=", PLE(None, 2, 1, 1, (4,), (3,), kinds[:2], inputs=inputs, seed=rng), \
        batch, THRESHOLD_MODEL


def _scalar_gradient_error(f, x: np.ndarray, analytic: np.ndarray) -> float:
    """Relative error of ``analytic`` against d f / d x, f() a float that reads x."""
    return relative_error(analytic, numerical_gradient(lambda: np.asarray(f()), x, np.ones(())))


def loss_rows(rng) -> list[tuple[str, str, float, float]]:
    """The losses and regularisers: gradients with respect to scores and to their own parameters."""
    rows = []
    targets = np.stack([rng.integers(0, 2, 8), rng.standard_normal(8)], axis=1)
    loss = MultiTaskLoss(("binary", "regression"), weights=[0.5, 2.0])
    for scale in (1.0, 50.0):
        error = check_loss(loss, scale * rng.standard_normal((8, 2)), targets)
        rows.append((f"MultiTaskLoss, logits x{scale:g}", "scores", error, THRESHOLD_BLOCK))
    uncertainty = UncertaintyWeightedLoss(("binary", "regression"), initial_log_variance=[0.3, -0.7])
    scores = rng.standard_normal((8, 2))
    rows.append(("UncertaintyWeightedLoss", "scores", check_loss(uncertainty, scores, targets), THRESHOLD_BLOCK))
    uncertainty.forward(scores, targets)
    uncertainty.zero_grad()
    uncertainty.backward()
    error = _scalar_gradient_error(lambda: uncertainty.forward(scores, targets), uncertainty.params["log_variance"],
                                   uncertainty.grads["log_variance"].copy())
    rows.append(("UncertaintyWeightedLoss", "log_variance", error, THRESHOLD_BLOCK))
    gates = rng.random((2, 7, 4)) + 0.1                                  # (G, N, E)
    error = _scalar_gradient_error(lambda: balance_loss(gates), gates, balance_loss_backward(gates))
    rows.append(("balance_loss (CV^2 of expert importance)", "gates", error, THRESHOLD_BLOCK))
    gradnorm = GradNormLoss(("binary", "regression", "regression"), weights=[0.4, 1.1, 1.5])
    norms, task_losses = np.array([0.3, 2.0, 0.7]), np.array([0.6, 3.0, 1.2])   # n_k, L_k
    gradnorm.initial_losses = np.array([0.7, 5.0, 1.1])
    targets_fixed = gradnorm.target_norms(gradnorm.weights * norms, task_losses)
    weights = gradnorm.weights
    _, analytic = gradnorm.objective(weights * norms, task_losses)
    error = _scalar_gradient_error(lambda: np.abs(weights * norms - targets_fixed).sum(), weights, analytic)
    rows.append(("GradNormLoss objective", "weights", error, THRESHOLD_BLOCK))
    return rows


def run(seed: int = 0) -> list[tuple[str, str, float, float]]:
    """Rows (what, parameter, relative error, threshold), the losses and training passes included."""
    rows = []
    for label, module, x, threshold in cases(seed):
        for name, error in check_module(module, x).items():
            rows.append((label, name, error, threshold))
    rng = np.random.default_rng(seed)
    remedies = MMoE(5, 3, (4,), (3,), ("binary", "regression"), seed=rng, balance_weight=0.5, expert_dropout=0.3)
    for name, error in check_training_pass(remedies, rng.standard_normal((6, 5))).items():
        rows.append(("MMoE training pass, balancing + dropout", name, error, THRESHOLD_MODEL))
    return rows + loss_rows(rng)


def format_rows(rows) -> str:
    width = max(len(label) for label, *_ in rows)
    pwidth = max(len(name) for _, name, *_ in rows)
    lines = [f"{'block / model':<{width}}  {'parameter':<{pwidth}}  {'rel. error':>10}  {'limit':>7}  ok"]
    for label, name, error, threshold in rows:
        lines.append(f"{label:<{width}}  {name:<{pwidth}}  {error:>10.2e}  {threshold:>7.0e}  "
                     f"{'yes' if error < threshold else 'NO'}")
    return "\n".join(lines)
