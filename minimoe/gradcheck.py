"""Numerical gradients by central differences, and the checks built on them.

Used by the tests, the lessons and ``minimoe gradcheck``; always in float64.

For a function f with an array output and an upstream gradient ``dout`` of that output's shape, the
scalar being differentiated is  L(x) = sum(f(x) * dout), and for each element x_i

    dL/dx_i ~ (L(x + h e_i) - L(x - h e_i)) / 2h,   h = 1e-6,

with truncation error O(h^2) (forward differences would be O(h)) and rounding error about
1e-16 * |L| / h. The analytic and numerical gradients a, b are compared by

    relative_error(a, b) = max|a - b| / max(floor, max|a| + max|b|),

one number per array: 0 for a perfect match, ~1 for unrelated arrays; a correct float64 backward
lands near 1e-9 or below, a wrong one at 1e-2 or above.

A check must be able to fail, so ``check_module`` and ``check_training_step`` do more than compare:

- the parameter gradients compared are those of the TRAINING path (``input_grad=False``, as ``fit``
  runs backward), and the ``input_grad=True`` path must give the same ones;
- backward runs twice after one forward and must add exactly twice the gradients, into the same
  arrays (``+=``, never ``=``);
- an array whose analytic and numerical gradients are both all-zero proves nothing: it fails,
  unless it is declared structurally zero (a gate over one expert, whose softmax is always 1);
- every ReLU unit (of a layer or an expert) must be active on some row of the batch, or its
  weights' gradients would be zeros compared with zeros.

Each check returns a ``GradientReport``: {row: error}, every row to be below the threshold.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np

from .layers import Dropout, Linear, ReLU
from .module import Sequential, add_gradients
from .moe import Experts, Gate

STEP = 1e-6
THRESHOLD_BLOCK = 1e-7     # layers and other building blocks
THRESHOLD_MODEL = 1e-6     # whole models
MODULE_FLOOR = 1e-3        # arrays are compared on at least this fraction of the module's largest gradient

INPUT_PATH = "(input_grad=True path)"
ACCUMULATION = "(backward twice)"
LIVE_UNITS = "(live units)"


def relative_error(analytic: np.ndarray, numeric: np.ndarray, floor: float = 1e-8) -> float:
    """max|a - b| / max(floor, max|a| + max|b|)."""
    analytic, numeric = np.asarray(analytic, dtype=np.float64), np.asarray(numeric, dtype=np.float64)
    if analytic.shape != numeric.shape:
        raise ValueError(f"gradients differ in shape: {analytic.shape} vs {numeric.shape}")
    if analytic.size == 0:
        return 0.0
    scale = max(floor, np.abs(analytic).max() + np.abs(numeric).max())
    return float(np.abs(analytic - numeric).max() / scale)


def numerical_gradient(f: Callable[[], np.ndarray], x: np.ndarray, dout: np.ndarray,
                       step: float = STEP) -> np.ndarray:
    """d sum(f() * dout) / dx by central differences.

    ``x`` is nudged IN PLACE, one element at a time, and restored exactly; ``f`` takes no
    arguments and must read ``x`` (a parameter array or a captured input).
    """
    if x.dtype != np.float64:
        raise TypeError(f"gradient checks need float64 arrays, got {x.dtype}")
    grad = np.zeros_like(x)
    flat_x, flat_grad = x.reshape(-1), grad.reshape(-1)   # views: writes reach x and grad
    for i in range(flat_x.size):
        original = flat_x[i]
        flat_x[i] = original + step
        plus = np.sum(f() * dout)
        flat_x[i] = original - step
        minus = np.sum(f() * dout)
        flat_x[i] = original
        flat_grad[i] = (plus - minus) / (2 * step)
    return grad


class GradientReport(dict):
    """{row: error} of one gradient check; the check passes when every error is below its threshold.

    Rows are the parameters by name (analytic against central differences), ``"input"``, and the
    checks of the contract (``INPUT_PATH``, ``ACCUMULATION``, ``LIVE_UNITS``). ``notes[row]`` says
    why a row is what it is where a number alone would not: a declared zero, an undeclared one
    (error inf), dead units, a replaced gradient array.
    """

    def __init__(self) -> None:
        super().__init__()
        self.notes: dict[str, str] = {}

    def add(self, row: str, error: float, note: str | None = None) -> None:
        self[row] = float(error)
        if note:
            self.notes[row] = note

    def failures(self, threshold: float) -> list[str]:
        """The rows at or above ``threshold``, each with its note."""
        return [f"{row}: {error:.2e}" + (f" ({self.notes[row]})" if row in self.notes else "")
                for row, error in self.items() if not error < threshold]

    def __repr__(self) -> str:
        rows = [f"{row}: {error:.2e}" + (f" ({self.notes[row]})" if row in self.notes else "")
                for row, error in sorted(self.items(), key=lambda item: -item[1] if np.isfinite(item[1]) else -np.inf)]
        return "GradientReport(\n  " + "\n  ".join(rows) + "\n)"


@contextlib.contextmanager
def frozen_dropout(module):
    """Within the block every ``Dropout`` below ``module`` (found by type) reuses its last mask, so
    that the nudged forwards of a gradient check see the same function as the analytic pass."""
    dropouts = [m for m in module.modules() if isinstance(m, Dropout)]
    before = [d.freeze_mask for d in dropouts]
    for dropout in dropouts:
        dropout.freeze_mask = True
    try:
        yield
    finally:
        for dropout, frozen in zip(dropouts, before):
            dropout.freeze_mask = frozen


def structural_zeros(module) -> dict[str, str]:
    """{parameter name: why its gradient is zero by construction} below ``module``: the parameters
    of every gate over a single expert (a softmax of one logit is always 1, whatever its weights)."""
    zeros = {}
    for prefix, gate in module.named_modules():
        if isinstance(gate, Gate) and gate.n_experts == 1:
            for name in gate.params:
                zeros[f"{prefix}{name}"] = "declared zero: a gate over one expert is always 1"
    return zeros


def dead_units(module) -> list[str]:
    """The ReLU units below ``module`` that were active on no row of the last forward, as
    "<module>: k of U units never active" (layers' ReLU, and every layer of every expert)."""
    dead = []
    for prefix, block in module.named_modules():
        if isinstance(block, ReLU) and block.__dict__.get("y") is not None:
            masks = [block.y.reshape(-1, block.y.shape[-1]) > 0]                # (N, U)
        elif isinstance(block, Experts) and block.__dict__.get("outputs"):
            masks = [output > 0 for output in block.outputs]                    # L x (N, E, H_l)
        else:
            continue
        for layer, mask in enumerate(masks):
            never = ~mask.any(axis=0)
            if never.any():
                where = f"{prefix}layer {layer}" if isinstance(block, Experts) else prefix.rstrip(".")
                dead.append(f"{where or type(block).__name__}: {int(never.sum())} of {never.size} units never active")
    return dead


def relu_layers(module) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(bias, pre-activation, active) of every ReLU layer below ``module``, from its last forward:
    a Linear followed by a ReLU in a Sequential (bias (U,), z (N, U)), and every layer of every
    Experts module (bias (E, H), z (N, E, H))."""
    for block in module.modules():
        if isinstance(block, Sequential):
            layers = list(block)
            for linear, relu in zip(layers, layers[1:]):
                if isinstance(linear, Linear) and isinstance(relu, ReLU) and "x" in linear.__dict__:
                    yield linear.params["b"], linear.x @ linear.params["W"] + linear.params["b"], relu.y > 0
        elif isinstance(block, Experts) and block.__dict__.get("outputs"):
            for layer in range(block.n_layers):
                yield (block.params[f"b{layer}"], block.pre_activation(layer, block.inputs[layer]),
                       block.outputs[layer] > 0)


KINK_MARGIN = 1e-3        # settle_relu_units keeps every row this far from a ReLU's kink


def _gap_midpoint(values: np.ndarray, near: float) -> float:
    """The midpoint between two consecutive sorted ``values`` nearest ``near``, among the gaps wider
    than 2 KINK_MARGIN (below every value when there is no such gap)."""
    midpoints, widths = (values[1:] + values[:-1]) / 2, np.diff(values)
    candidates = midpoints[widths > 2 * KINK_MARGIN]
    if candidates.size == 0:
        return float(values[0]) - 1.0
    return float(candidates[np.argmin(np.abs(candidates - near))])


def settle_relu_units(module, x, max_rounds: int = 10) -> int:
    """Shift the biases of ReLU units below ``module`` so that every unit is on for at least a
    quarter of the rows of ``x`` and no row sits within KINK_MARGIN of a kink; returns how many
    shifts it made.

    A fixture for gradient checks, not for training. At a parameter point where a unit is dead on
    every row, its weights' gradients are zeros compared with zeros and prove nothing; small models
    have such units at any seed (a tower reads non-negative mixtures, so a unit with mostly
    negative weights stays off for every input). And a row within 1e-6 of a kink lets the nudges of
    central differences cross it. So each such unit's threshold moves into a gap between two rows'
    pre-activations: near the median for a (nearly) dead unit, near its old place otherwise. Later
    layers are revisited after earlier ones moved.
    """
    shifts = 0
    for _ in range(max_rounds):
        module.forward(x)
        moved = 0
        for bias, z, _ in list(relu_layers(module)):
            columns, biases = z.reshape(len(z), -1), bias.reshape(-1)        # (N, units), a view of bias
            for unit in range(columns.shape[1]):
                values = np.sort(columns[:, unit])
                if (values > 0).mean() < 0.25:                               # (nearly) dead
                    biases[unit] -= _gap_midpoint(values, near=float(np.median(values)))
                elif np.abs(values).min() < KINK_MARGIN:                     # a row at the kink
                    biases[unit] -= _gap_midpoint(values, near=0.0)
                else:
                    continue
                moved += 1
        shifts += moved
        if not moved:
            break
    return shifts


def _compare(report: GradientReport, row: str, analytic: np.ndarray, numeric: np.ndarray, floor: float,
             declared: dict[str, str]) -> None:
    """One row: analytic against numeric, with the rule that zeros compared with zeros fail unless
    declared."""
    if not np.any(analytic) and not np.any(numeric):
        if row in declared:
            report.add(row, 0.0, declared[row])
        else:
            report.add(row, np.inf, "0 = 0: both gradients all-zero and not declared structurally zero "
                                    "(a dead unit, or a parameter the output does not reach?)")
        return
    report.add(row, relative_error(analytic, numeric, floor))


def _add_live_units(report: GradientReport, module) -> None:
    dead = dead_units(module)
    report.add(LIVE_UNITS, np.inf if dead else 0.0, "; ".join(dead) if dead else None)


def _backward(module, dout, input_grad: bool):
    """backward and backward_auxiliary, as one training step runs them; the summed input gradient."""
    return add_gradients(module.backward(dout.copy(), input_grad=input_grad),
                         module.backward_auxiliary(input_grad=input_grad))


def check_module(module, x, dout: np.ndarray | None = None, seed: int = 0, floor: float = 1e-8,
                 module_floor: float = MODULE_FLOOR, zeros: dict[str, str] | None = None) -> GradientReport:
    """Check ``module``'s backward against central differences, and its contract.

    The scalar checked is  sum(forward(x) * dout) + auxiliary_loss(), in the module's current mode
    (in training mode the load-balancing loss is included, and every dropout mask is drawn once and
    frozen). After ONE forward:

    1. ``backward(dout, input_grad=False)`` and ``backward_auxiliary(input_grad=False)``, the path
       ``fit`` takes, on zeroed gradients: these parameter gradients are compared with central
       differences, one row per parameter;
    2. the same pair again: every gradient must now be exactly twice as large, in the same arrays
       (row ``ACCUMULATION``);
    3. on zeroed gradients, the pair with ``input_grad=True``: the parameter gradients must equal
       step 1's (row ``INPUT_PATH``), and the input gradient (row ``"input"``, when x is a float
       array) is compared with central differences.

    ``dout`` defaults to a seeded standard-normal array. A row compares on the floor
    max(``floor``, ``module_floor`` * G), G the largest analytic gradient entry of the module:
    central differences in float64 resolve a gradient only to about 1e-10 of the objective, so an
    array a millionth of the module's largest (a gate two levels below the towers of a PLE) would
    show rounding noise as a relative error of 1e-5; on the module's scale it is compared to within
    1e-9 of G, which any mistake exceeds. A gradient all-zero on both sides fails unless it is in
    ``structural_zeros(module)`` or ``zeros`` ({name: reason}); a ReLU unit active on no row fails
    (row ``LIVE_UNITS``).
    """
    declared = dict(structural_zeros(module), **(zeros or {}))
    x_work = x.copy() if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating) else x
    report = GradientReport()
    with frozen_dropout(module):
        out = module.forward(x_work)            # the masks of the last forward (or new ones) from here on
        if dout is None:
            dout = np.random.default_rng(seed).standard_normal(out.shape)
        _add_live_units(report, module)
        module.zero_grad()
        arrays_before = {name: id(grad) for name, grad in module.grads.items()}
        _backward(module, dout, input_grad=False)
        analytic = {name: grad.copy() for name, grad in module.grads.items()}
        _backward(module, dout, input_grad=False)
        twice = module.grads
        replaced = [name for name, grad in twice.items() if id(grad) != arrays_before[name]]
        doubling = max([relative_error(twice[name], 2 * analytic[name]) for name in analytic] + [0.0])
        report.add(ACCUMULATION, np.inf if replaced else doubling,
                   f"backward replaced the gradient arrays of {replaced}: add into them with +=" if replaced else None)
        module.zero_grad()
        dx = _backward(module, dout, input_grad=True)
        with_input = module.grads
        report.add(INPUT_PATH, max([relative_error(with_input[name], analytic[name]) for name in analytic] + [0.0]))

        largest = max([float(np.abs(grad).max()) for grad in analytic.values() if grad.size] + [0.0])
        floor = max(floor, module_floor * largest)

        def objective():
            return np.asarray(np.sum(module.forward(x_work) * dout) + module.auxiliary_loss())

        for name, param in module.params.items():
            _compare(report, name, analytic[name], numerical_gradient(objective, param, np.ones(())), floor, declared)
        if x_work is not x:
            _compare(report, "input", np.zeros_like(x_work) if dx is None else dx,
                     numerical_gradient(objective, x_work, np.ones(())), floor, declared)
    return report


def check_training_pass(model, X, dout: np.ndarray | None = None, seed: int = 0,
                        floor: float = 1e-8) -> GradientReport:
    """``check_module`` in training mode (dropout drawn and frozen, the auxiliary loss included),
    whatever mode the model was in; the mode is restored afterwards."""
    with model.mode(training=True):
        return check_module(model, np.array(X, dtype=np.float64), dout, seed, floor)


def check_training_step(model, loss, X, Y, floor: float = 1e-8, module_floor: float = MODULE_FLOOR,
                        zeros: dict[str, str] | None = None) -> GradientReport:
    """The gradients of one ``fit`` step, computed by the function ``fit`` calls
    (``train.step_gradients``: ``loss.backward_model(model)`` with ``input_grad=False``, then
    ``model.backward_auxiliary(input_grad=False)``), against central differences of that step's
    objective  loss(model(X), Y) + auxiliary_loss(), for every parameter of the model and of the
    loss (rows ``loss.<name>``). Training mode, dropout drawn once and frozen.

    Labels may be missing (NaN). A loss that adapts its weights inside ``backward_model``
    (``GradNormLoss``) is compared at the weights the step used: its ``state()`` is put back before
    the numerical pass. Zeros and dead units are checked as in ``check_module``.
    """
    from .train import step_gradients

    declared = dict(structural_zeros(model), **(zeros or {}))
    X = model.check_inputs(X)
    Y = model.check_targets("Y", Y, len(X))
    report = GradientReport()
    with model.mode(training=True), frozen_dropout(model):
        weights_of_the_step = loss.state()
        step_gradients(model, loss, X, Y)
        _add_live_units(report, model)
        owners = (("", model), ("loss.", loss))
        analytic = {prefix + name: grad.copy() for prefix, owner in owners for name, grad in owner.grads.items()}
        loss.restore(weights_of_the_step)
        largest = max([float(np.abs(grad).max()) for grad in analytic.values() if grad.size] + [0.0])
        floor = max(floor, module_floor * largest)

        def objective():
            return np.asarray(loss.forward(model.forward(X, check=False), Y, check=False) + model.auxiliary_loss())

        for prefix, owner in owners:
            for name, param in owner.params.items():
                _compare(report, prefix + name, analytic[prefix + name],
                         numerical_gradient(objective, param, np.ones(())), floor, declared)
    return report


def check_loss(loss, scores: np.ndarray, targets: np.ndarray) -> GradientReport:
    """``loss.backward()`` (d total / d scores) against central differences (row ``"scores"``), and
    the gradients of the loss's own parameters (rows by name) with the accumulation rule: a second
    ``backward`` adds them again, into the same arrays. Unlabelled (NaN) entries must get exactly
    the numerical gradient, 0."""
    scores = np.array(scores, dtype=np.float64)
    report = GradientReport()
    loss.forward(scores, targets)
    loss.zero_grad()
    arrays_before = {name: id(grad) for name, grad in loss.grads.items()}
    dscores = loss.backward()
    own = {name: grad.copy() for name, grad in loss.grads.items()}
    loss.backward()
    if own:
        twice = loss.grads
        replaced = [name for name in own if id(twice[name]) != arrays_before[name]]
        report.add(ACCUMULATION, np.inf if replaced else
                   max(relative_error(twice[name], 2 * own[name]) for name in own),
                   f"backward replaced the gradient arrays of {replaced}" if replaced else None)

    def objective():
        return np.asarray(loss.forward(scores, targets))

    _compare(report, "scores", dscores, numerical_gradient(objective, scores, np.ones(())), 1e-8, {})
    for name, param in loss.params.items():
        _compare(report, name, own[name], numerical_gradient(objective, param, np.ones(())), 1e-8, {})
    return report
