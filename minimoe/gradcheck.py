"""Numerical gradients by central differences, and the relative error used to compare them.

Used by the tests, the lessons and ``minimoe gradcheck``; always in float64.

For a function f with an array output and an upstream gradient ``dout`` of that output's shape, the
scalar being differentiated is  L(x) = sum(f(x) * dout), and for each element x_i

    dL/dx_i ~ (L(x + h e_i) - L(x - h e_i)) / 2h,   h = 1e-6,

with truncation error O(h^2) (forward differences would be O(h)) and rounding error about
1e-16 * |L| / h. The analytic and numerical gradients a, b are compared by

    relative_error(a, b) = max|a - b| / max(1e-8, max|a| + max|b|),

one number per array: 0 for a perfect match, ~1 for unrelated arrays; a correct float64 backward
lands near 1e-9 or below, a wrong one at 1e-2 or above.

The floor 1e-8 keeps an all-zero gradient from dividing by zero. Where a gradient is legitimately
tiny (a saturated softmax passes ~1e-20 back) the numerical side is all rounding noise (~1e-10), so
checks at such points raise the floor to the scale of the gradients that are not saturated
(``floor=1``), which turns the check into an absolute one at that scale.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np

from .layers import Dropout
from .module import add_gradients

STEP = 1e-6
THRESHOLD_BLOCK = 1e-7     # layers and other building blocks
THRESHOLD_MODEL = 1e-6     # whole models
MODULE_FLOOR = 1e-3        # arrays are compared on at least this fraction of the module's largest gradient


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


def check_module(module, x, dout: np.ndarray | None = None, seed: int = 0,
                 floor: float = 1e-8, module_floor: float = MODULE_FLOOR) -> dict[str, float]:
    """Relative error of every parameter gradient and of the input gradient of ``module``.

    The scalar checked is  sum(forward(x) * dout) + auxiliary_loss(), in the module's current mode:
    one forward, then ``backward(dout)`` and ``backward_auxiliary()`` once on zeroed gradients, each
    entry of ``module.grads`` (and the input gradient, under ``"input"``, when x is a float array)
    compared with central differences. In training mode a regulariser (the load-balancing loss) is
    included and every dropout mask is drawn once and frozen while x and the parameters are nudged.
    ``dout`` defaults to a seeded standard-normal array.

    Each array's relative error has the floor max(``floor``, ``module_floor`` * G), G the largest
    analytic gradient entry of the whole module. Central differences in float64 resolve a gradient
    only to about 1e-10 of the objective, so an array whose gradient is a millionth of the module's
    largest (a gate two levels below the towers of a PLE) would show rounding noise as a "relative
    error" of 1e-5; on the module's scale it is compared to within 1e-9 of G, which any mistake
    in its backward pass exceeds. Returns {name: relative error}.
    """
    x_work = x.copy() if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating) else x
    out = module.forward(x_work)                                # draws the masks used throughout
    if dout is None:
        dout = np.random.default_rng(seed).standard_normal(out.shape)
    with frozen_dropout(module):
        module.zero_grad()
        module.forward(x_work)
        dx = add_gradients(module.backward(dout.copy()), module.backward_auxiliary())
        analytic = {name: grad.copy() for name, grad in module.grads.items()}
        largest = max([float(np.abs(grad).max()) for grad in analytic.values() if grad.size] + [0.0])
        floor = max(floor, module_floor * largest)

        def objective():
            return np.asarray(np.sum(module.forward(x_work) * dout) + module.auxiliary_loss())

        errors = {name: relative_error(analytic[name], numerical_gradient(objective, param, np.ones(())), floor)
                  for name, param in module.params.items()}
        if x_work is not x:
            errors["input"] = relative_error(dx, numerical_gradient(objective, x_work, np.ones(())), floor)
    return errors


def check_training_pass(model, X, dout: np.ndarray | None = None, seed: int = 0,
                        floor: float = 1e-8) -> dict[str, float]:
    """``check_module`` in training mode (dropout drawn and frozen, the auxiliary loss included),
    whatever mode the model was in; the mode is restored afterwards."""
    with model.mode(training=True):
        return check_module(model, np.array(X, dtype=np.float64), dout, seed, floor)


def check_loss(loss, scores: np.ndarray, targets: np.ndarray) -> float:
    """Relative error of ``loss.backward()`` (d total / d scores) against central differences."""
    scores = np.array(scores, dtype=np.float64)
    loss.forward(scores, targets)
    analytic = loss.backward()
    numeric = numerical_gradient(lambda: np.asarray(loss.forward(scores, targets)), scores, np.ones(()))
    return relative_error(analytic, numeric)
