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

from collections.abc import Callable

import numpy as np

STEP = 1e-6
THRESHOLD_BLOCK = 1e-7     # layers and other building blocks
THRESHOLD_MODEL = 1e-6     # whole models


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


def check_module(module, x, dout: np.ndarray | None = None, seed: int = 0,
                 floor: float = 1e-8) -> dict[str, float]:
    """Relative error of every parameter gradient and of the input gradient of ``module``.

    Runs forward(x), then backward(dout) once on zeroed gradients, and compares each entry of
    ``module.grads`` (and the returned input gradient, under ``"input"``, when x is a float array)
    with central differences. ``dout`` defaults to a seeded standard-normal array; ``floor`` is
    passed to ``relative_error``.
    Returns {name: relative error}.
    """
    out = module.forward(x)
    if dout is None:
        dout = np.random.default_rng(seed).standard_normal(out.shape)
    module.zero_grad()
    dx = module.backward(dout.copy())
    errors = {}
    analytic = {name: grad.copy() for name, grad in module.grads.items()}
    for name, param in module.params.items():
        numeric = numerical_gradient(lambda: module.forward(x), param, dout)
        errors[name] = relative_error(analytic[name], numeric, floor)
    if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating):
        x_work = x.copy()
        numeric = numerical_gradient(lambda: module.forward(x_work), x_work, dout)
        errors["input"] = relative_error(dx, numeric, floor)
    return errors


def check_training_pass(model, X, dout: np.ndarray | None = None, seed: int = 0,
                        floor: float = 1e-8) -> dict[str, float]:
    """``check_module`` for a model's training pass (``forward(X, training=True)``).

    A training pass draws a dropout mask and adds ``auxiliary_loss`` (the load-balancing loss) to
    what ``fit`` minimises, so the scalar checked is  sum(scores * dout) + auxiliary_loss, and
    the expert-dropout mask is drawn once and frozen while X and the parameters are nudged.
    Returns {name: relative error}, the input X included under ``"input"``.
    """
    dropout = getattr(model, "expert_dropout", None)
    X_work = np.array(X, dtype=np.float64)
    scores = model.forward(X_work, training=True)                   # draws the mask used throughout
    if dout is None:
        dout = np.random.default_rng(seed).standard_normal(scores.shape)
    if dropout is not None:
        dropout.freeze_mask = True
    try:
        model.zero_grad()
        model.forward(X_work, training=True)
        dX = model.backward(dout.copy())
        analytic = {name: grad.copy() for name, grad in model.grads.items()}

        def objective():
            return np.asarray(np.sum(model.forward(X_work, training=True) * dout) + model.auxiliary_loss)

        errors = {name: relative_error(analytic[name], numerical_gradient(objective, param, np.ones(())), floor)
                  for name, param in model.params.items()}
        errors["input"] = relative_error(dX, numerical_gradient(objective, X_work, np.ones(())), floor)
    finally:
        if dropout is not None:
            dropout.freeze_mask = False
    return errors


def check_loss(loss, scores: np.ndarray, targets: np.ndarray) -> float:
    """Relative error of ``loss.backward()`` (d total / d scores) against central differences."""
    scores = np.array(scores, dtype=np.float64)
    loss.forward(scores, targets)
    analytic = loss.backward()
    numeric = numerical_gradient(lambda: np.asarray(loss.forward(scores, targets)), scores, np.ones(()))
    return relative_error(analytic, numeric)
