"""Optimizers, written out: SGD with momentum and Adam.

``step(params, grads)`` updates every array of ``params`` in place from the same-named entry of
``grads`` (the dotted dicts of a model). State (velocities, moments) is kept per parameter, by name,
and belongs to the array it was made for: stepping another array under a known name (a second
model, or a copy of the first) is refused with a clear error instead of applying one model's
moments to another's parameters.
"""

from __future__ import annotations

import math

import numpy as np


def _check_rate(name: str, value: float, low: float = 0.0, high: float = np.inf,
                low_open: bool = True) -> float:
    value = float(value)
    below = value <= low if low_open else value < low
    if not np.isfinite(value) or below or value >= high:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must lie in {bracket}{low}, {high}), got {value}")
    return value


class Optimizer:
    """What SGD and Adam share: the check that a name's state belongs to the array it was made for."""

    def __init__(self) -> None:
        self.owners: dict[str, np.ndarray] = {}

    def check_owner(self, name: str, param: np.ndarray, grad: np.ndarray) -> bool:
        """True the first time ``name`` is seen (its state must be created), False after; a clear
        error if ``param`` is another array than the one the state was made for."""
        if grad.shape != param.shape:
            raise ValueError(f"gradient of {name!r} has shape {grad.shape}, the parameter {param.shape}")
        owner = self.owners.get(name)
        if owner is None:
            self.owners[name] = param
            return True
        if owner is not param:
            raise ValueError(f"{type(self).__name__} holds state for other parameters under {name!r} "
                             f"(shape {owner.shape}; now given shape {param.shape}): an optimizer belongs to the "
                             f"parameters it first stepped; create a new one for another model (or after "
                             f"adding parameters to this one)")
        return False


class SGD(Optimizer):
    """v <- momentum * v + g;  p <- p - lr * v   (plain SGD when momentum = 0)."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.0) -> None:
        super().__init__()
        self.lr = _check_rate("lr", lr)
        self.momentum = _check_rate("momentum", momentum, 0.0, 1.0, low_open=False)
        self.velocity: dict[str, np.ndarray] = {}

    def step(self, params: dict, grads: dict) -> None:
        for name, param in params.items():
            grad = grads[name]
            self.check_owner(name, param, grad)
            if self.momentum:
                if name not in self.velocity:
                    self.velocity[name] = np.zeros_like(param)
                velocity = self.velocity[name]
                velocity *= self.momentum
                velocity += grad
                grad = velocity
            param -= self.lr * grad


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015), with bias correction folded into the step size:

        m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
        p <- p - lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps_t),  eps_t = eps sqrt(1 - b2^t)

    which equals the paper's  p - lr * m_hat / (sqrt(v_hat) + eps)  exactly. With ``weight_decay``
    w > 0 every step also shrinks the parameters, p <- p - lr * w * p, apart from the gradient
    (decoupled weight decay, Loshchilov and Hutter's AdamW).
    """

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__()
        self.lr = _check_rate("lr", lr)
        self.beta1 = _check_rate("betas[0]", betas[0], 0.0, 1.0, low_open=False)
        self.beta2 = _check_rate("betas[1]", betas[1], 0.0, 1.0, low_open=False)
        self.eps = _check_rate("eps", eps)
        self.weight_decay = _check_rate("weight_decay", weight_decay, low_open=False)
        self.t = 0
        # dtype -> (parameter names, {name: its slice}, m, v): the moments of that dtype's parameters, laid end to end
        # in one 1-D array each, in the order of the names. One array per dtype, not one per
        # parameter: a step is then a dozen NumPy calls on the whole model, instead of a dozen per
        # parameter, which at lesson sizes costs more than the arithmetic. The parameters themselves
        # stay the model's own arrays.
        self.moments: dict[np.dtype, tuple[tuple[str, ...], dict[str, slice], np.ndarray, np.ndarray]] = {}

    def step(self, params: dict, grads: dict) -> None:
        self.t += 1
        correction = math.sqrt(1.0 - self.beta2 ** self.t)   # a Python float keeps float32 arrays float32
        step_size = self.lr * correction / (1.0 - self.beta1 ** self.t)
        eps = self.eps * correction
        by_dtype: dict[np.dtype, list[str]] = {}
        for name, param in params.items():
            self.check_owner(name, param, grads[name])
            by_dtype.setdefault(param.dtype, []).append(name)
        for dtype, names in by_dtype.items():
            m, v = self._moments(dtype, names, params)
            g = np.concatenate([grads[name].reshape(-1) for name in names])          # one flat copy
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            squares = (1.0 - self.beta2) * g
            squares *= g
            v += squares
            denominator = np.sqrt(v)
            denominator += eps
            update = step_size * m
            update /= denominator                                                  # lr m_hat / (sqrt(v_hat) + eps)
            offset = 0
            for name in names:
                param = params[name]
                if self.weight_decay:
                    param -= (self.lr * self.weight_decay) * param
                param -= update[offset:offset + param.size].reshape(param.shape)
                offset += param.size

    def _moments(self, dtype: np.dtype, names: list[str], params: dict) -> tuple[np.ndarray, np.ndarray]:
        """(m, v) of the parameters ``names`` of one dtype, end to end in that order: zeros on the
        first step; when the set of names changed (a parameter added), rebuilt with every known
        parameter's moments carried over."""
        names = tuple(names)
        known = self.moments.get(dtype)
        if known is None or known[0] != names:
            spans, start = {}, 0
            for name in names:
                spans[name] = slice(start, start + params[name].size)
                start += params[name].size
            m, v = np.zeros(start, dtype=dtype), np.zeros(start, dtype=dtype)
            if known is not None:
                for name, span in known[1].items():
                    if name in spans:
                        m[spans[name]], v[spans[name]] = known[2][span], known[3][span]
            self.moments[dtype] = (names, spans, m, v)
        return self.moments[dtype][2], self.moments[dtype][3]
