"""Building blocks: Linear, ReLU, Sigmoid, Softmax, Embedding, MLP and Dropout.

Each block follows the module contract (``module.py``): ``forward`` keeps what ``backward`` needs,
``backward(dout)`` returns the gradient with respect to the input and adds parameter gradients.
Shapes: N rows, D features.
"""

from __future__ import annotations

import numpy as np

from .checks import check_dtype, check_number, check_positive_int, check_units, make_rng
from .functions import sigmoid, softmax
from .initializers import check_init, init_bias, init_weight
from .module import Module, Sequential, expect_shape


class Linear(Module):
    """y = x @ W + b.

    x: (N, D_in) -> y: (N, D_out). W: (D_in, D_out), b: (D_out,).
    """

    def __init__(self, d_in: int, d_out: int, seed=0, init: str = "uniform", dtype=np.float64) -> None:
        super().__init__()
        d_in, d_out = check_positive_int("d_in", d_in), check_positive_int("d_out", d_out)
        rng, init, dtype = make_rng(seed), check_init(init), check_dtype(dtype)
        self.add_param("W", init_weight(rng, (d_in, d_out), d_in, init, dtype))
        self.add_param("b", init_bias(rng, (d_out,), d_in, init, dtype))

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x                                              # (N, D_in), kept for backward
        return x @ self._params["W"] + self._params["b"]        # (N, D_out)

    def backward(self, dy: np.ndarray, input_grad: bool = True) -> np.ndarray | None:  # dy: (N, D_out)
        expect_shape(self, "dy", dy, (len(self.x), self._params["W"].shape[1]))
        self._grads["W"] += self.x.T @ dy                       # (D_in, D_out)
        self._grads["b"] += dy.sum(axis=0)                      # (D_out,)
        return dy @ self._params["W"].T if input_grad else None  # dx: (N, D_in)


class ReLU(Module):
    """y = max(x, 0), element-wise; the gradient at exactly 0 is taken as 0.

    Forward keeps its output y, which it returns anyway, and backward reads the mask off it
    (x > 0 exactly where y > 0): a prediction, which never runs backward, builds no mask.
    (Multiplying by the boolean mask is about ten times faster than ``np.where`` here.)
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.y = np.maximum(x, 0)
        return self.y

    def backward(self, dy: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        expect_shape(self, "dy", dy, self.y.shape)
        return dy * (self.y > 0) if input_grad else None


class Sigmoid(Module):
    """y = sigmoid(x), element-wise; dy/dx = y (1 - y)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.y = sigmoid(x)
        return self.y

    def backward(self, dy: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        expect_shape(self, "dy", dy, self.y.shape)
        return dy * self.y * (1.0 - self.y) if input_grad else None


class Softmax(Module):
    """y = softmax(z) over the last axis.

    The Jacobian is dy_i/dz_j = y_i (delta_ij - y_j), so the vector-Jacobian product is
    dz = y * (dy - sum_j dy_j y_j): O(E) per row instead of building the (E, E) matrix.
    """

    def forward(self, z: np.ndarray) -> np.ndarray:
        self.y = softmax(z)
        return self.y

    def backward(self, dy: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        expect_shape(self, "dy", dy, self.y.shape)
        return self.y * (dy - (dy * self.y).sum(axis=-1, keepdims=True)) if input_grad else None


class Embedding(Module):
    """Integer ids -> dense vectors: y[n] = W[ids[n]].

    ids: (N,) ints in [0, num_embeddings) -> y: (N, dim). W: (num_embeddings, dim), drawn from
    N(0, init_std^2) (default 1, as PyTorch's Embedding). An id that appears several times in a
    batch receives the sum of its rows' gradients.
    The input is discrete, so ``backward`` returns None.
    """

    def __init__(self, num_embeddings: int, dim: int, seed=0, dtype=np.float64, init_std: float = 1.0) -> None:
        super().__init__()
        self.num_embeddings = check_positive_int("num_embeddings", num_embeddings)
        dim = check_positive_int("dim", dim)
        rng, dtype = make_rng(seed), check_dtype(dtype)
        init_std = check_number("init_std", init_std)
        self.add_param("W", (init_std * rng.standard_normal((self.num_embeddings, dim))).astype(dtype))

    def forward(self, ids: np.ndarray, check: bool = True) -> np.ndarray:
        """ids: (N,) -> (N, dim). ``check=False`` skips the id checks, for a caller (``FeatureInput``)
        that checked the whole batch once."""
        if check:
            ids = np.asarray(ids)
            if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
                raise TypeError(f"ids must be a 1-D integer array, got dtype {ids.dtype} and shape {ids.shape}")
            if ids.size and (ids.min() < 0 or ids.max() >= self.num_embeddings):
                bad = ids[(ids < 0) | (ids >= self.num_embeddings)][0]
                raise ValueError(f"ids must lie in [0, {self.num_embeddings}), got {bad}")
        self.ids = ids
        return np.take(self._params["W"], ids, axis=0)          # (N, dim); faster than W[ids]

    def backward(self, dy: np.ndarray, input_grad: bool = True) -> None:   # dy: (N, dim)
        expect_shape(self, "dy", dy, (len(self.ids), self._params["W"].shape[1]))
        scatter_add_rows(self._grads["W"], self.ids, dy)        # repeated ids accumulate
        return None


def scatter_add_rows(target: np.ndarray, ids: np.ndarray, rows: np.ndarray) -> None:
    """target[ids[n]] += rows[n] for every n, in place, a repeated id receiving the sum of its rows
    (what ``np.add.at(target, ids, rows)`` does, two to four times faster).

    target: (V, d), ids: (N,), rows: (N, d).
    """
    n_ids, dim = target.shape
    if n_ids <= 8 * len(ids):
        # One bincount over the flattened (id, column) pairs replaces np.add.at's unbuffered loop;
        # it builds a (V * d,) total, so it pays while the table is not much larger than the batch.
        flat = (ids[:, None] * dim + np.arange(dim)).ravel()
        target += np.bincount(flat, weights=rows.ravel(), minlength=n_ids * dim).reshape(n_ids, dim)
    else:
        # A large table: sum the rows of each id present (sorted, then reduceat) and add only those.
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
        target[sorted_ids[starts]] += np.add.reduceat(rows[order], starts, axis=0)


class MLP(Module):
    """Linear layers of widths ``units`` with ReLU between them.

    x: (N, D_in) -> (N, units[-1]). With ``activate_last`` a ReLU also follows the last layer (a
    shared bottom or an expert's hidden representation); without it the last layer is linear (a
    tower's output score). Parameters are named ``layers.0.W``, ``layers.0.b``, ``layers.2.W``, ...
    """

    def __init__(self, d_in: int, units, seed=0, activate_last: bool = True, init: str = "uniform",
                 dtype=np.float64) -> None:
        super().__init__()
        d_in, units, rng = check_positive_int("d_in", d_in), check_units("units", units), make_rng(seed)
        modules: list[Module] = []
        for index, width in enumerate(units):
            modules.append(Linear(d_in, width, rng, init=init, dtype=dtype))
            if activate_last or index < len(units) - 1:
                modules.append(ReLU())
            d_in = width
        self.d_out = d_in
        self.layers = Sequential(modules)

    def forward(self, x: np.ndarray) -> np.ndarray:
        out = self.layers.forward(x)
        self.out_shape = out.shape
        return out

    def backward(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        expect_shape(self, "dout", dout, self.out_shape)
        return self.layers.backward(dout, input_grad)


class Dropout(Module):
    """Inverted dropout: in training mode each element is kept with probability 1 - rate and scaled
    by 1 / (1 - rate), so its expected value is unchanged; in evaluation mode it is the identity.

    x: any shape -> the same shape. ``shared_axes`` lists axes along which one draw is shared: on
    gate weights of shape (G, N, E), ``shared_axes=(0,)`` drops expert i for row n in every gate at
    once (the expert is absent for that row), instead of separately per gate.
    Setting ``freeze_mask = True`` reuses the last mask in later forwards (gradient checks do).
    """

    def __init__(self, rate: float, seed=0, shared_axes=()) -> None:
        super().__init__()
        rate = float(rate)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must lie in [0, 1), got {rate}")
        self.rate, self.rng, self.shared_axes = rate, make_rng(seed), tuple(shared_axes)
        self.freeze_mask = False
        self.mask = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.shape = x.shape
        if not self.training or self.rate == 0.0:
            self.mask = None
            return x
        mask_shape = tuple(1 if axis in self.shared_axes else size for axis, size in enumerate(x.shape))
        if not (self.freeze_mask and self.mask is not None and self.mask.shape == mask_shape):
            keep = self.rng.random(mask_shape) >= self.rate
            self.mask = keep.astype(x.dtype) / x.dtype.type(1.0 - self.rate)
        return x * self.mask

    def backward(self, dy: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        expect_shape(self, "dy", dy, self.shape)
        if not input_grad:
            return None
        return dy if self.mask is None else dy * self.mask
