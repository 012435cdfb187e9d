"""Mixture-of-Experts pieces: all experts as one batched module, a softmax gate, the mixture, and
the load-balancing loss on the gates.

Notation: N rows, D input features, E experts, H units of an expert's last layer, G gates.
"""

from __future__ import annotations

import numpy as np

from .checks import check_dtype, check_positive_int, check_units, make_rng
from .initializers import check_init, init_bias, init_weight
from .layers import MLP, Softmax
from .module import Module


class Experts(Module):
    """E expert MLPs (ReLU after every layer) held as stacked arrays and run as batched tensor ops.

    x: (N, D) -> (N, E, H) with H = units[-1]. Layer l has ``W{l}``: (E, D_l, D_{l+1}) and
    ``b{l}``: (E, D_{l+1}); ``W{l}[i]`` is expert i's weight. The first layer of all experts is one
    matrix product of x with W0 laid out as a (D, E * H_0) matrix (``tensordot`` makes that copy);
    deeper layers are one batched matmul over the expert axis. No Python loop runs over experts.
    """

    def __init__(self, d_in: int, n_experts: int, units, seed=0, init: str = "uniform",
                 dtype=np.float64) -> None:
        super().__init__()
        d_in = check_positive_int("d_in", d_in)
        self.n_experts = check_positive_int("n_experts", n_experts)
        self.units = check_units("expert_units", units)
        rng, init, dtype = make_rng(seed), check_init(init), check_dtype(dtype)
        self.n_layers = len(self.units)
        for layer, width in enumerate(self.units):
            # Each expert is initialised exactly as its own Linear(d_in, width) would be.
            self.add_param(f"W{layer}", init_weight(rng, (self.n_experts, d_in, width), d_in, init, dtype))
            self.add_param(f"b{layer}", init_bias(rng, (self.n_experts, width), d_in, init, dtype))
            d_in = width

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.inputs = [x]                   # the input of each layer: (N, D), then (N, E, D_l)
        self.active = []                    # ReLU masks, (N, E, D_{l+1})
        h = x
        for layer in range(self.n_layers):
            W, b = self._params[f"W{layer}"], self._params[f"b{layer}"]
            if layer == 0:
                z = np.tensordot(h, W, axes=(1, 1))                       # (N, E, H_0)
            else:
                z = np.matmul(h.transpose(1, 0, 2), W).transpose(1, 0, 2)  # (N, E, H_l)
            z += b                                                        # b: (E, H_l) broadcasts over N
            h = np.maximum(z, 0, out=z)                                   # ReLU in place
            self.active.append(h > 0)
            if layer + 1 < self.n_layers:
                self.inputs.append(h)
        return h                                                          # (N, E, H)

    def backward(self, dh: np.ndarray, input_grad: bool = True) -> np.ndarray | None:  # dh: (N, E, H)
        for layer in reversed(range(self.n_layers)):
            W = self._params[f"W{layer}"]
            dz = dh * self.active[layer]                                  # (N, E, H_l)
            self._grads[f"b{layer}"] += dz.sum(axis=0)                    # (E, H_l)
            h_in = self.inputs[layer]
            if layer == 0:
                # dW0[e] = x^T dz[:, e, :], all experts in one product: (D, E, H_0) -> (E, D, H_0)
                self._grads["W0"] += np.tensordot(h_in, dz, axes=(0, 0)).transpose(1, 0, 2)
                if not input_grad:
                    return None
                dh = np.tensordot(dz, W, axes=((1, 2), (0, 2)))           # dx: (N, D), summed over experts
            else:
                dz_e = dz.transpose(1, 0, 2)                              # (E, N, H_l)
                self._grads[f"W{layer}"] += np.matmul(h_in.transpose(1, 2, 0), dz_e)  # (E, H_{l-1}, H_l)
                dh = np.matmul(dz_e, W.transpose(0, 2, 1)).transpose(1, 0, 2)     # (N, E, H_{l-1})
        return dh


class Gate(Module):
    """g(x) = softmax(W_g h(x) + b_g): a distribution over E experts for every row.

    x: (N, D) -> (N, E). h is the identity, or an MLP of widths ``gate_units`` (ReLU after each
    layer) named ``hidden``. Parameters: ``W``: (D or gate_units[-1], E), ``b``: (E,).
    """

    def __init__(self, d_in: int, n_experts: int, gate_units=(), seed=0, init: str = "uniform",
                 dtype=np.float64) -> None:
        super().__init__()
        d_in, n_experts = check_positive_int("d_in", d_in), check_positive_int("n_experts", n_experts)
        gate_units = check_units("gate_units", gate_units, allow_empty=True)
        rng, init, dtype = make_rng(seed), check_init(init), check_dtype(dtype)
        self.hidden = None
        if gate_units:
            self.hidden = self.add_child("hidden", MLP(d_in, gate_units, rng, init=init, dtype=dtype))
            d_in = gate_units[-1]
        self.add_param("W", init_weight(rng, (d_in, n_experts), d_in, init, dtype))
        self.add_param("b", init_bias(rng, (n_experts,), d_in, init, dtype))
        self.softmax = Softmax()

    def logits(self, x: np.ndarray) -> np.ndarray:
        self.h = x if self.hidden is None else self.hidden.forward(x)   # (N, D_h)
        return self.h @ self._params["W"] + self._params["b"]            # (N, E)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.softmax.forward(self.logits(x))                      # (N, E), rows sum to 1

    def backward(self, dg: np.ndarray, input_grad: bool = True) -> np.ndarray | None:  # dg: (N, E)
        dlogits = self.softmax.backward(dg)                               # (N, E)
        self._grads["W"] += self.h.T @ dlogits                            # (D_h, E)
        self._grads["b"] += dlogits.sum(axis=0)                           # (E,)
        if self.hidden is None:
            return dlogits @ self._params["W"].T if input_grad else None  # (N, D)
        return self.hidden.backward(dlogits @ self._params["W"].T, input_grad)


def mix(gates: np.ndarray, experts: np.ndarray) -> np.ndarray:
    """The gated sum of expert outputs, for every gate at once.

    gates: (G, N, E), experts: (N, E, H) -> (G, N, H), out[g, n] = sum_i gates[g, n, i] experts[n, i].
    Per row n this is the small product gates[:, n] (G, E) @ experts[n] (E, H); ``matmul`` over the
    stack of N rows runs it three to four times faster than the equivalent ``einsum``.
    """
    return np.matmul(gates.transpose(1, 0, 2), experts).transpose(1, 0, 2)


def mix_backward(gates: np.ndarray, experts: np.ndarray, dmixed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of ``mix`` for an upstream dmixed: (G, N, H).

    d gates[g, n, i] = experts[n, i] . dmixed[g, n]                  -> (G, N, E)
    d experts[n, i]  = sum_g gates[g, n, i] dmixed[g, n]  (every gate -> (N, E, H) fans in)
    """
    dgates = np.matmul(experts, dmixed.transpose(1, 2, 0)).transpose(2, 0, 1)    # (N, E, G) -> (G, N, E)
    if gates.shape[0] == 1:
        # One gate: an outer product per row; matmul with an inner dimension of 1 is slow.
        dexperts = gates[0][:, :, None] * dmixed[0][:, None, :]
    else:
        dexperts = np.matmul(gates.transpose(1, 2, 0), dmixed.transpose(1, 0, 2))  # (N, E, G) @ (N, G, H)
    return dgates, dexperts


def balance_loss(gates: np.ndarray) -> float:
    """Load balance of the gates: sum over gates of the squared coefficient of variation of expert
    importance (Shazeer et al., 2017, "Outrageously Large Neural Networks"),

        importance[g, i] = sum_n gates[g, n, i],    CV^2_g = var_i(importance[g]) / mean_i(importance[g])^2

    with the population variance over the E experts. It is 0 when every expert gets the same total
    weight and E - 1 when one expert gets all of it; it does not depend on the batch size.
    gates: (G, N, E) -> a float.
    """
    importance = gates.sum(axis=1)                                        # (G, E)
    mean = importance.mean(axis=1)                                        # (G,)
    return float((importance.var(axis=1) / mean ** 2).sum())


def balance_loss_backward(gates: np.ndarray) -> np.ndarray:
    """d balance_loss / d gates: (G, N, E), the same for every row n of a gate.

    With m = mean_i importance_i and v = var_i importance_i (both over E experts),
        d CV^2 / d importance_i = 2 (importance_i - m) / (E m^2) - 2 v / (E m^3).
    (For softmax gates the importances sum to N, so the second term is the same for every expert
    and the softmax Jacobian removes it; it is kept so the function is right for any input.)
    """
    n_experts = gates.shape[2]
    importance = gates.sum(axis=1)                                        # (G, E)
    mean = importance.mean(axis=1, keepdims=True)                          # (G, 1)
    variance = importance.var(axis=1, keepdims=True)                       # (G, 1)
    dimportance = 2.0 * (importance - mean) / (n_experts * mean ** 2) - 2.0 * variance / (n_experts * mean ** 3)
    return np.broadcast_to(dimportance[:, None, :], gates.shape).astype(gates.dtype)   # (G, N, E)
