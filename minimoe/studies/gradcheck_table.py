"""``minimoe gradcheck``: every building block, model and loss checked against central differences
in float64. A learner's self-test after changing a backward pass.

Each block and model is checked by ``check_module``: one row per parameter (the gradients of the
training path, ``input_grad=False``, as ``fit`` computes them), the input gradient, and three rows
of the contract: the ``input_grad=True`` path gives the same parameter gradients, a second backward
adds exactly as much again into the same arrays, and every ReLU unit is active on some row of the
batch. Then one row per model and loss for a whole ``fit`` step with missing labels
(``check_training_step``), and the losses on their own. A gradient that is zero on both sides fails
unless the table declares it structurally zero, and the note column says so.

Batches are 16 rows. Small models have ReLU units that no input turns on; before each check
``settle_relu_units`` shifts their biases so that each is on for some rows and no row sits at a
kink, and the check then asserts that every unit is active.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .. import moe
from ..gradcheck import (
    THRESHOLD_BLOCK,
    THRESHOLD_MODEL,
    check_loss,
    check_module,
    check_training_pass,
    check_training_step,
    numerical_gradient,
    relative_error,
    settle_relu_units,
)
from ..heads import FunnelHead
from ..inputs import FeatureBatch, FeatureInput
from ..layers import MLP, Dropout, Embedding, Linear, ReLU, Sigmoid, Softmax
from ..losses import MultiTaskLoss
from ..models import CGC, ESMM, PLE, MMoE, OMoE, SharedBottom
from ..moe import Experts, Gate
from ..weighting import GradNormLoss, UncertaintyWeightedLoss

LEGEND = """Every row compares a hand-written gradient with central differences (relative error), except:
  (input_grad=True path)  parameter gradients of backward(input_grad=True) against the training path's (False)
  (backward twice)        a second backward after one forward must add exactly as much again, into the same arrays
  (live units)            inf when a ReLU unit is active on no row of the batch
  worst of n arrays       one fit step (train.step_gradients) with missing labels: its worst array
A gradient that is zero on both sides fails (inf) unless the note declares it structurally zero.
"""
ROWS = 16                 # batch rows of every check
MISSING_SHARE = 0.4       # the share of one task's labels that the missing-label rows leave out


def _away_from_zero(x: np.ndarray) -> np.ndarray:
    """Keep inputs 0.1 away from ReLU's kink, where the derivative does not exist."""
    return np.where(np.abs(x) < 0.1, np.copysign(0.1, x), x)


def _feature_input(rng) -> tuple[FeatureInput, FeatureBatch]:
    """A small input layer (two id columns, two numeric ones) and a batch for it, with repeated ids."""
    inputs = FeatureInput([4, 3], n_numeric=2, embedding_dims=2, seed=rng, embedding_std=0.5)
    return inputs, FeatureBatch(rng.integers(0, [4, 3], size=(ROWS, 2)), rng.standard_normal((ROWS, 2)))


def block_cases(rng) -> Iterator[tuple[str, object, object, float]]:
    """(label, block, input, threshold) for every building block."""
    x = rng.standard_normal((ROWS, 5))
    yield "Linear(5, 4)", Linear(5, 4, rng), x, THRESHOLD_BLOCK
    yield "ReLU", ReLU(), _away_from_zero(x), THRESHOLD_BLOCK
    yield "Sigmoid", Sigmoid(), 3 * x, THRESHOLD_BLOCK
    yield "Softmax", Softmax(), x, THRESHOLD_BLOCK
    yield "Embedding(5, 3), repeated ids", Embedding(5, 3, rng), rng.permutation(np.arange(ROWS) % 5), THRESHOLD_BLOCK
    yield "MLP(5, (4, 3))", MLP(5, (4, 3), rng), x, THRESHOLD_BLOCK
    yield "Dropout(0.3), training mode (mask frozen)", Dropout(0.3, rng), x, THRESHOLD_BLOCK
    yield "Experts(5, E=4, (4, 3))", Experts(5, 4, (4, 3), rng), x, THRESHOLD_BLOCK
    yield "Gate(5, E=4, gate_units=(3,))", Gate(5, 4, (3,), rng), x, THRESHOLD_BLOCK
    logits = 50.0 * rng.uniform(-1, 1, size=(ROWS, 2))
    logits[:2] = [[50.0, 50.0], [50.0, -50.0]]
    yield "FunnelHead, logits up to +-50", FunnelHead(), logits, THRESHOLD_BLOCK


def model_cases(rng) -> Iterator[tuple[str, object, object, float]]:
    """(label, model, input, threshold) for every model: the three of the MMoE paper, CGC and PLE
    over T = 1, 2, 3 tasks and 1 to 3 levels, ESMM on two backbones, with and without an input layer."""
    x = rng.standard_normal((ROWS, 5))
    tasks = ("binary", "regression")
    yield "SharedBottom", SharedBottom(5, (6, 4), (3,), tasks, seed=rng), x, THRESHOLD_MODEL
    yield "OMoE", OMoE(5, 3, (4,), (3,), tasks, gate_units=(3,), seed=rng), x, THRESHOLD_MODEL
    yield "MMoE", MMoE(5, 3, (4, 3), (3,), ("binary", "regression", "binary"), gate_units=(3,), seed=rng), \
        x, THRESHOLD_MODEL
    yield from extraction_cases(rng, x)
    yield from funnel_cases(rng, x)


def extraction_cases(rng, x) -> Iterator[tuple[str, object, object, float]]:
    """CGC and PLE over T = 1, 2, 3 tasks, 1 to 3 levels, 0 to 2 task experts and 1 or 2 shared
    experts, with linear and hidden-layer gates, and with an input layer."""
    kinds = ("binary", "regression", "binary")
    for n_tasks, n_levels, task_experts, shared, gate_units in (
            (1, 1, 0, 1, ()), (2, 1, 1, 2, ()), (3, 1, 2, 1, (3,)), (2, 1, [2, 0], 1, ()),
            (1, 2, 2, 2, (3,)), (2, 2, 1, 1, ()), (3, 2, 0, 2, (3,)), (2, 3, 1, 2, ()), (3, 3, 2, 1, ())):
        label = (f"PLE {n_levels} levels" if n_levels > 1 else "CGC") + \
            f", T={n_tasks}, task experts {task_experts}, shared {shared}" + (", hidden gates" if gate_units else "")
        options = dict(n_shared_experts=shared, n_task_experts=task_experts, expert_units=(4,), tower_units=(3,),
                       tasks=kinds[:n_tasks], gate_units=gate_units, seed=rng)
        model = PLE(5, n_levels=n_levels, **options) if n_levels > 1 else CGC(5, **options)
        yield label, model, x, THRESHOLD_MODEL
    inputs, batch = _feature_input(rng)
    yield "PLE 2 levels with inputs=", PLE(None, 2, 1, 1, (4,), (3,), kinds[:2], inputs=inputs, seed=rng), \
        batch, THRESHOLD_MODEL


def funnel_cases(rng, x) -> Iterator[tuple[str, object, object, float]]:
    """ESMM on a Shared-Bottom and on an MMoE backbone, at ordinary logits and at logits up to +-50,
    and with an input layer; and ESMM as the paper builds it (only the input layer shared) and
    without any sharing (ESMM-NS)."""
    for backbone, options in (("shared_bottom", {"bottom_units": (6,)}),
                              ("mmoe", {"n_experts": 3, "expert_units": (4,), "gate_units": (3,)})):
        yield f"ESMM on {backbone}", ESMM(5, backbone, (3,), seed=rng, **options), x, THRESHOLD_MODEL
        extreme = ESMM(5, backbone, (3,), seed=rng, **options)
        settle_relu_units(extreme, x)
        tower_logits = extreme.base.forward(x)                               # (N, 2): a and b
        for k in range(2):                                                   # rescale: max |a|, |b| = 50
            for name in ("W", "b"):
                extreme.params[f"base.towers.{k}.layers.2.{name}"][...] *= 50.0 / np.abs(tower_logits[:, k]).max()
        yield f"ESMM on {backbone}, logits up to +-50", extreme, x, THRESHOLD_MODEL
        inputs, batch = _feature_input(rng)
        yield f"ESMM on {backbone} with inputs=", ESMM(None, backbone, (3,), seed=rng, inputs=inputs, **options), \
            batch, THRESHOLD_MODEL
    for label, backbone in (("ESMM, the paper's: only the input layer shared", "shared_bottom"),
                            ("ESMM-NS: nothing shared", "none")):
        inputs, batch = _feature_input(rng)
        yield label, ESMM(None, backbone, (3,), seed=rng, inputs=inputs), batch, THRESHOLD_MODEL


def training_pass_cases(rng) -> Iterator[tuple[str, object, object, float]]:
    """The regularisers in training mode: load balancing (its gradient flows down through the levels
    below) and expert dropout, on one and on two levels."""
    x = rng.standard_normal((ROWS, 5))
    tasks = ("binary", "regression")
    remedies = dict(balance_weight=0.5, expert_dropout=0.3)
    yield "MMoE training pass, balancing + dropout", MMoE(5, 3, (4,), (3,), tasks, seed=rng, **remedies), x, \
        THRESHOLD_MODEL
    yield "PLE 2 levels training pass, balancing + dropout", \
        PLE(5, 2, 2, 1, (4,), (3,), tasks, gate_units=(3,), seed=rng, **remedies), x, THRESHOLD_MODEL


def with_missing_labels(rng, model, X) -> np.ndarray:
    """Labels for the model's tasks on X's rows, MISSING_SHARE of the last regression task's (or, for
    ESMM, the click's) left out as NaN. ESMM gets (click, click and conversion) labels."""
    n = len(X)
    labels = np.column_stack([rng.integers(0, 2, n).astype(float) if task.kind == "binary" else rng.standard_normal(n)
                              for task in model.tasks])
    if isinstance(model, ESMM):
        labels[:, 1] *= labels[:, 0]                                    # a conversion only after a click
        column = 0
    else:
        kinds = [task.kind for task in model.tasks]
        column = len(kinds) - 1 - kinds[::-1].index("regression") if "regression" in kinds else 0
    missing = rng.permutation(n)[:int(np.ceil(MISSING_SHARE * n))]
    labels[missing, column] = np.nan
    return labels


def step_cases(rng) -> Iterator[tuple[str, object, object, object, object]]:
    """(label, model, loss, X, Y): one ``fit`` step of every model with each of the three losses,
    40% of one task's labels missing."""
    x = rng.standard_normal((ROWS, 5))
    tasks = ("binary", "regression")
    inputs, batch = _feature_input(rng)
    models = [("SharedBottom", lambda: SharedBottom(5, (6,), (3,), tasks, seed=rng), x),
              ("OMoE", lambda: OMoE(5, 3, (4,), (3,), tasks, seed=rng), x),
              ("MMoE", lambda: MMoE(5, 3, (4,), (3,), tasks, gate_units=(3,), seed=rng, balance_weight=0.3), x),
              ("CGC", lambda: CGC(5, 1, 1, (4,), (3,), tasks, seed=rng), x),
              ("PLE 2 levels", lambda: PLE(5, 2, 1, 1, (4,), (3,), tasks, seed=rng, balance_weight=0.3), x),
              ("ESMM on shared_bottom", lambda: ESMM(5, "shared_bottom", (3,), seed=rng, bottom_units=(6,)), x),
              ("ESMM on mmoe with inputs=", lambda: ESMM(None, "mmoe", (3,), seed=rng, inputs=inputs, n_experts=3,
                                                           expert_units=(4,)), batch)]
    for name, make, X in models:
        for loss_name in ("MultiTaskLoss", "UncertaintyWeightedLoss", "GradNormLoss"):
            model = make()
            Y = with_missing_labels(rng, model, X)
            if loss_name == "MultiTaskLoss":
                loss = MultiTaskLoss(model.tasks, weights=[0.7, 1.3])
            elif loss_name == "UncertaintyWeightedLoss":
                loss = UncertaintyWeightedLoss(model.tasks, initial_log_variance=[0.3, -0.4])
            else:
                loss = GradNormLoss(model.tasks, weights=[0.6, 1.4])
            yield f"{name}, fit step, {loss_name}, 40% NaN", model, loss, X, Y


def _scalar_gradient_error(f, x: np.ndarray, analytic: np.ndarray) -> float:
    """Relative error of ``analytic`` against d f / d x, f() a float that reads x."""
    return relative_error(analytic, numerical_gradient(lambda: np.asarray(f()), x, np.ones(())))


def labelled_rows_loss(loss: MultiTaskLoss, scores: np.ndarray, targets: np.ndarray) -> float:
    """The weighted loss computed the long way: each task's mean over the rows that have its label,
    taken out of the batch first (what a NaN label must mean)."""
    total = 0.0
    for k, task in enumerate(loss.tasks):
        labelled = ~np.isnan(targets[:, k])
        total += loss.weights[k] * float(np.mean(task.loss(scores[labelled, k], targets[labelled, k])))
    return total


def loss_rows(rng) -> list[tuple[str, str, float, float, str]]:
    """The losses and regularisers: gradients with respect to scores and to their own parameters,
    with and without missing labels."""
    rows = []
    targets = np.stack([rng.integers(0, 2, ROWS), rng.standard_normal(ROWS)], axis=1)
    missing = targets.copy()
    missing[rng.permutation(ROWS)[:int(np.ceil(MISSING_SHARE * ROWS))], 1] = np.nan
    loss = MultiTaskLoss(("binary", "regression"), weights=[0.5, 2.0])
    for scale in (1.0, 50.0):
        for label, labels in (("", targets), (", 40% NaN", missing)):
            report = check_loss(loss, scale * rng.standard_normal((ROWS, 2)), labels)
            rows += [(f"MultiTaskLoss, logits x{scale:g}{label}", row, error, THRESHOLD_BLOCK,
                      report.notes.get(row, "")) for row, error in report.items()]
    scores = rng.standard_normal((ROWS, 2))
    value = loss.forward(scores, missing)
    rows.append(("MultiTaskLoss, 40% NaN", "value = mean over labelled rows",
                 abs(value - labelled_rows_loss(loss, scores, missing)) / max(1.0, abs(value)), THRESHOLD_BLOCK,
                 "against each task's mean over its labelled rows, taken out of the batch"))
    for label, labels in (("", targets), (", 40% NaN", missing)):
        uncertainty = UncertaintyWeightedLoss(("binary", "regression"), initial_log_variance=[0.3, -0.7])
        report = check_loss(uncertainty, rng.standard_normal((ROWS, 2)), labels)
        rows += [(f"UncertaintyWeightedLoss{label}", row, error, THRESHOLD_BLOCK, report.notes.get(row, ""))
                 for row, error in report.items()]
    gates = rng.random((2, 7, 4)) + 0.1                                  # (G, N, E)
    # Looked up in moe at call time: the table checks the function the models call.
    error = _scalar_gradient_error(lambda: moe.balance_loss(gates), gates, moe.balance_loss_backward(gates))
    rows.append(("balance_loss (CV^2 of expert importance)", "gates", error, THRESHOLD_BLOCK, ""))
    gradnorm = GradNormLoss(("binary", "regression", "regression"), weights=[0.4, 1.1, 1.5])
    norms, task_losses = np.array([0.3, 2.0, 0.7]), np.array([0.6, 3.0, 1.2])   # n_k, L_k
    gradnorm.initial_losses = np.array([0.7, 5.0, 1.1])
    targets_fixed = gradnorm.target_norms(gradnorm.weights * norms, task_losses)
    weights = gradnorm.weights
    _, analytic = gradnorm.objective(weights * norms, task_losses)
    error = _scalar_gradient_error(lambda: np.abs(weights * norms - targets_fixed).sum(), weights, analytic)
    rows.append(("GradNormLoss objective", "weights", error, THRESHOLD_BLOCK, ""))
    return rows


def _report_rows(label: str, report, threshold: float) -> list[tuple[str, str, float, float, str]]:
    return [(label, row, error, threshold, report.notes.get(row, "")) for row, error in report.items()]


def iter_rows(seed: int = 0) -> Iterator[tuple[str, str, float, float, str]]:
    """Rows (what, row, error, threshold, note), one case at a time: the blocks, the losses, the
    models, the training passes, and one ``fit`` step per model and loss with missing labels."""
    rng = np.random.default_rng(seed)
    for label, module, x, threshold in block_cases(rng):
        settle_relu_units(module, x)
        yield from _report_rows(label, check_module(module, x), threshold)
    yield from loss_rows(np.random.default_rng([seed, 1]))
    for label, module, x, threshold in model_cases(rng):
        settle_relu_units(module, x)
        yield from _report_rows(label, check_module(module, x), threshold)
    for label, model, x, threshold in training_pass_cases(rng):
        settle_relu_units(model, x)
        yield from _report_rows(label, check_training_pass(model, x), threshold)
    for label, model, loss, X, Y in step_cases(rng):
        settle_relu_units(model, X)
        report = check_training_step(model, loss, X, Y)
        worst = max(report, key=lambda row: report[row])
        yield (label, f"worst of {len(report) - 1} arrays: {worst}", report[worst], THRESHOLD_MODEL,
               report.notes.get(worst, ""))
        yield from ((label, row, error, THRESHOLD_MODEL, report.notes[row]) for row, error in report.items()
                    if row in report.notes and row != worst)            # declared zeros and other notes


def run(seed: int = 0) -> list[tuple[str, str, float, float, str]]:
    """Every row of the table (``iter_rows``)."""
    return list(iter_rows(seed))


def first_failure(seed: int = 0) -> tuple[str, str, float, float, str] | None:
    """The first row at or above its threshold, or None when the whole table passes: the same
    verdict as ``run``, without computing the rows after a failure."""
    return next((row for row in iter_rows(seed) if not row[2] < row[3]), None)


def format_rows(rows) -> str:
    width = max(len(label) for label, *_ in rows)
    row_width = max(len(row) for _, row, *_ in rows)
    lines = [f"{'block / model':<{width}}  {'row':<{row_width}}  {'rel. error':>10}  {'limit':>7}  ok   note"]
    for label, row, error, threshold, note in rows:
        lines.append(f"{label:<{width}}  {row:<{row_width}}  {error:>10.2e}  {threshold:>7.0e}  "
                     f"{'yes' if error < threshold else 'NO '}  {note}".rstrip())
    return "\n".join(lines)
