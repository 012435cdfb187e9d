"""Shared-Bottom, One-gate MoE (OMoE) and Multi-gate MoE (MMoE).

All three map X: (N, D) to scores: (N, T), one column per task: a logit for a ``"binary"`` task,
a value for a ``"regression"`` task. Every tower is an MLP of widths ``tower_units`` followed by a
linear layer to one output.

    Shared-Bottom  y_k = h_k(f(x))
    OMoE           y_k = h_k(sum_i g_i(x) f_i(x))        one gate g for all tasks
    MMoE           y_k = h_k(sum_i g_{k,i}(x) f_i(x))    one gate g_k per task
"""

from __future__ import annotations

import numpy as np

from .checks import check_dtype, check_matrix, check_number, check_positive_int, check_tasks, check_units, make_rng
from .initializers import check_init
from .inputs import FeatureInput
from .layers import MLP, Dropout, sigmoid
from .module import Module, ModuleList
from .moe import Experts, Gate, balance_loss, balance_loss_backward, mix, mix_backward

PREDICT_BATCH = 8192   # rows per forward pass in predict / gate_weights, to bound memory


def _row_batches(X):
    """X in slices of at most PREDICT_BATCH rows (a FeatureBatch slices like an array)."""
    return (X[start:start + PREDICT_BATCH] for start in range(0, len(X), PREDICT_BATCH))


class MultiTaskModel(Module):
    """What every model shares: input checks, towers, predict, save and load.

    Subclasses build ``self.towers`` and implement ``_forward`` (checked X -> (N, T) scores) and
    ``_backward`` ((N, T) -> dX, or None with ``input_grad=False``, as ``fit`` asks).

    ``_forward(X, training=True)`` is the training pass: it applies dropout, and sets
    ``auxiliary_loss``, a regulariser (the load-balancing loss) that ``fit`` adds to the task losses
    and whose gradient ``_backward`` adds to the parameters'. Outside training it is 0.
    """

    auxiliary_loss = 0.0

    def __init__(self, n_features, tasks, task_names, seed, dtype, init, config: dict, inputs=None) -> None:
        super().__init__()
        self.tasks, self.task_names = check_tasks(tasks, task_names)
        self.n_tasks = len(self.tasks)
        self.dtype = check_dtype(dtype)
        self.init = check_init(init)
        self.rng = make_rng(seed)
        self.inputs = None
        if inputs is not None:
            if isinstance(inputs, dict):                  # as saved in a model file's config
                inputs = FeatureInput(**inputs, seed=self.rng, dtype=self.dtype)
            if not isinstance(inputs, FeatureInput):
                raise TypeError(f"inputs must be a FeatureInput, got {type(inputs).__name__}")
            if n_features is not None and n_features != inputs.d_out:
                raise ValueError(f"n_features must be None or the input layer's width {inputs.d_out}, got {n_features}")
            n_features = inputs.d_out
            self.inputs = self.add_child("inputs", inputs)
        self.n_features = check_positive_int("n_features", n_features)
        # Everything needed to rebuild the architecture; saved next to the parameters.
        self.config = dict(config, n_features=self.n_features, tasks=list(self.tasks),
                           task_names=list(self.task_names), dtype=self.dtype.name, init=self.init)
        if self.inputs is not None:
            self.config["inputs"] = self.inputs.config
        self._n_rows = None

    def _make_towers(self, d_in: int, tower_units) -> None:
        units = check_units("tower_units", tower_units, allow_empty=True) + (1,)
        self.towers = self.add_child("towers", ModuleList(
            [MLP(d_in, units, self.rng, activate_last=False, init=self.init, dtype=self.dtype)
             for _ in range(self.n_tasks)]))

    def _dense(self, X):
        """X itself, or the input layer's (N, D) output when the model has one (``inputs=``)."""
        return X if self.inputs is None else self.inputs.forward(X)

    def _dense_backward(self, dX):
        """Route d loss / d x into the input layer's embeddings (ids have no gradient: None)."""
        if self.inputs is None:
            return dX
        self.inputs.backward(dX)
        return None

    def _needs_dense_grad(self, input_grad: bool) -> bool:
        return input_grad or self.inputs is not None       # embeddings learn from d loss / d x

    def _towers_forward(self, inputs) -> np.ndarray:
        """inputs[k]: (N, H) for tower k -> scores (N, T)."""
        return np.concatenate([tower.forward(h) for tower, h in zip(self.towers, inputs)], axis=1)

    def _towers_backward(self, dscores: np.ndarray) -> list[np.ndarray]:
        """dscores: (N, T) -> the gradient of each tower's input, [(N, H)] * T."""
        return [tower.backward(dscores[:, k:k + 1]) for k, tower in enumerate(self.towers)]

    def zero_grad(self) -> None:
        self.flat_grads.fill(0.0)

    # -- public API ------------------------------------------------------------------------------
    def check_inputs(self, X):
        """X as a finite (N, n_features) array of the model's dtype (or, with an input layer, a
        checked batch of ids and numeric features), or a clear error."""
        if self.inputs is not None:
            return self.inputs.check(X)
        return check_matrix("X", X, n_cols=self.n_features, dtype=self.dtype, cols_name="features")

    def forward(self, X, training: bool = False) -> np.ndarray:
        """X: (N, D) -> scores (N, T): logits for binary tasks, values for regression tasks.

        ``training=True`` runs the training pass (dropout, ``auxiliary_loss``), as ``fit`` does."""
        X = self.check_inputs(X)
        self._n_rows = len(X)
        return self._forward(X, training)

    def backward(self, dscores) -> np.ndarray | None:
        """dscores: (N, T), the loss gradient of the last ``forward``'s scores -> dX: (N, D)
        (None for a model with an input layer: ids have no gradient).

        Parameter gradients are ADDED into ``grads``; call ``zero_grad`` between steps.
        """
        if self._n_rows is None:
            raise RuntimeError("backward needs the forward pass just before it: call forward(X) first "
                               "(predict and gate_weights replace what forward kept)")
        dscores = np.asarray(dscores)
        if dscores.shape != (self._n_rows, self.n_tasks):
            raise ValueError(f"dscores must have shape {(self._n_rows, self.n_tasks)} "
                             f"(rows of the last forward, tasks), got {dscores.shape}")
        return self._backward(dscores.astype(self.dtype, copy=False))

    def predict_scores(self, X) -> np.ndarray:
        """(N, T) raw scores (logits for binary tasks), computed in batches to bound memory."""
        X = self.check_inputs(X)
        self._n_rows = None                  # the caches below are not the last forward's any more
        return np.concatenate([self._forward(batch) for batch in _row_batches(X)])

    def predict(self, X) -> np.ndarray:
        """(N, T): probabilities for binary tasks, values for regression tasks."""
        scores = self.predict_scores(X)
        binary = np.array([task == "binary" for task in self.tasks])
        scores[:, binary] = sigmoid(scores[:, binary])
        return scores

    def save(self, path) -> None:
        """Write architecture and parameters to ``path`` (.npz), atomically."""
        from .serialization import save_model
        save_model(self, path)

    def load_weights(self, path) -> None:
        """Load parameters saved from a model of the same architecture (checked before any change)."""
        from .serialization import load_weights
        load_weights(self, path)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args})"


class SharedBottom(MultiTaskModel):
    """y_k = h_k(f(x)): one shared MLP ``bottom`` (ReLU after every layer), one tower per task."""

    def __init__(self, n_features: int | None, bottom_units=(113,), tower_units=(8,),
                 tasks=("regression", "regression"), task_names=None, seed=0, dtype=np.float64,
                 init: str = "uniform", inputs=None) -> None:
        config = dict(bottom_units=list(check_units("bottom_units", bottom_units)),
                      tower_units=list(check_units("tower_units", tower_units, allow_empty=True)))
        super().__init__(n_features, tasks, task_names, seed, dtype, init, config, inputs)
        self.bottom = self.add_child("bottom", MLP(self.n_features, bottom_units, self.rng,
                                                   init=self.init, dtype=self.dtype))
        self._make_towers(self.bottom.d_out, tower_units)
        self.pack()                  # one flat buffer: fast optimizer steps and zero_grad

    def _forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        shared = self.bottom.forward(self._dense(X))                      # (N, H)
        return self._towers_forward([shared] * self.n_tasks)              # (N, T)

    def _backward(self, dscores: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        dshared = sum(self._towers_backward(dscores))                     # every tower fans in: (N, H)
        dX = self.bottom.backward(dshared, self._needs_dense_grad(input_grad))  # (N, D)
        return self._dense_backward(dX)


class _MixtureOfExperts(MultiTaskModel):
    """Experts, ``n_gates`` softmax gates, and towers; task k reads the mixture of gate
    ``gate_of_task[k]``.

    Two optional remedies for experts that go unused (both act only in training passes):
    ``balance_weight`` w adds w * ``balance_loss`` (the squared coefficient of variation of each
    gate's expert importance) to the loss; ``expert_dropout`` r drops each expert for each row with
    probability r (in every gate at once) and scales the kept gate weights by 1 / (1 - r).
    """

    def __init__(self, n_features, n_experts, expert_units, tower_units, gate_units, tasks,
                 task_names, seed, dtype, init, multi_gate: bool, inputs, balance_weight=0.0,
                 expert_dropout=0.0) -> None:
        balance_weight = check_number("balance_weight", balance_weight, allow_zero=True)
        expert_dropout = float(expert_dropout)
        if not 0.0 <= expert_dropout < 1.0:
            raise ValueError(f"expert_dropout must lie in [0, 1), got {expert_dropout}")
        config = dict(n_experts=check_positive_int("n_experts", n_experts),
                      expert_units=list(check_units("expert_units", expert_units)),
                      tower_units=list(check_units("tower_units", tower_units, allow_empty=True)),
                      gate_units=list(check_units("gate_units", gate_units, allow_empty=True)),
                      balance_weight=balance_weight, expert_dropout=expert_dropout)
        super().__init__(n_features, tasks, task_names, seed, dtype, init, config, inputs)
        self.balance_weight = balance_weight
        self.n_experts = n_experts
        self.experts = self.add_child("experts", Experts(self.n_features, n_experts, expert_units,
                                                         self.rng, init=self.init, dtype=self.dtype))
        n_gates = self.n_tasks if multi_gate else 1
        self.gate_of_task = list(range(self.n_tasks)) if multi_gate else [0] * self.n_tasks
        self.gates = self.add_child("gates", ModuleList(
            [Gate(self.n_features, n_experts, gate_units, self.rng, init=self.init, dtype=self.dtype)
             for _ in range(n_gates)]))
        self._make_towers(self.experts.units[-1], tower_units)
        self.pack()                  # one flat buffer: fast optimizer steps and zero_grad
        # Dropout draws from the model's generator after every weight was drawn, so a model's
        # initial weights do not depend on whether it uses dropout.
        self.expert_dropout = Dropout(expert_dropout, seed=self.rng, shared_axes=(0,))

    def _forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        x = self._dense(X)                                                # (N, D)
        self.expert_out = self.experts.forward(x)                          # (N, E, H)
        self.gate_out = np.stack([gate.forward(x) for gate in self.gates])  # (G, N, E)
        self._balancing = training and self.balance_weight > 0
        self.auxiliary_loss = self.balance_weight * balance_loss(self.gate_out) if self._balancing else 0.0
        self.mixing = self.expert_dropout.forward(self.gate_out, training)   # (G, N, E)
        mixed = mix(self.mixing, self.expert_out)                         # (G, N, H)
        return self._towers_forward([mixed[g] for g in self.gate_of_task])  # (N, T)

    def _backward(self, dscores: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        dtower_in = self._towers_backward(dscores)                        # [(N, H)] * T
        dmixed = np.zeros((len(self.gates),) + dtower_in[0].shape, dtype=self.dtype)  # (G, N, H)
        for k, g in enumerate(self.gate_of_task):
            dmixed[g] += dtower_in[k]                                     # OMoE: all tasks share gate 0
        dgates, dexperts = mix_backward(self.mixing, self.expert_out, dmixed)
        dgates = self.expert_dropout.backward(dgates)                     # (G, N, E)
        if self._balancing:
            dgates = dgates + self.balance_weight * balance_loss_backward(self.gate_out)
        input_grad = self._needs_dense_grad(input_grad)
        dX = self.experts.backward(dexperts, input_grad)                  # (N, D) or None
        for gate, dgate in zip(self.gates, dgates):
            dX_gate = gate.backward(dgate, input_grad)
            if input_grad:
                dX += dX_gate                                             # x fans out to every gate
        return self._dense_backward(dX)

    def gate_weights(self, X) -> np.ndarray:
        """(T, N, E): the softmax weights task k's tower mixes the experts with."""
        X = self.check_inputs(X)
        self._n_rows = None                  # gate caches are overwritten: no backward after this
        per_batch = []
        for batch in _row_batches(X):
            x = self._dense(batch)                                        # (B, D)
            per_batch.append(np.stack([gate.forward(x) for gate in self.gates]))   # (G, B, E)
        gates = np.concatenate(per_batch, axis=1)                         # (G, N, E)
        return gates[self.gate_of_task]


class OMoE(_MixtureOfExperts):
    """One-gate Mixture-of-Experts: y_k = h_k(sum_i g_i(x) f_i(x)), one gate shared by all tasks."""

    def __init__(self, n_features: int | None, n_experts: int = 8, expert_units=(16,), tower_units=(8,),
                 tasks=("regression", "regression"), task_names=None, gate_units=(), seed=0,
                 dtype=np.float64, init: str = "uniform", inputs=None, balance_weight: float = 0.0,
                 expert_dropout: float = 0.0) -> None:
        super().__init__(n_features, n_experts, expert_units, tower_units, gate_units, tasks,
                         task_names, seed, dtype, init, multi_gate=False, inputs=inputs,
                         balance_weight=balance_weight, expert_dropout=expert_dropout)


class MMoE(_MixtureOfExperts):
    """Multi-gate Mixture-of-Experts (Ma et al., KDD 2018): y_k = h_k(sum_i g_{k,i}(x) f_i(x)),
    one gate per task."""

    def __init__(self, n_features: int | None, n_experts: int = 8, expert_units=(16,), tower_units=(8,),
                 tasks=("regression", "regression"), task_names=None, gate_units=(), seed=0,
                 dtype=np.float64, init: str = "uniform", inputs=None, balance_weight: float = 0.0,
                 expert_dropout: float = 0.0) -> None:
        super().__init__(n_features, n_experts, expert_units, tower_units, gate_units, tasks,
                         task_names, seed, dtype, init, multi_gate=True, inputs=inputs,
                         balance_weight=balance_weight, expert_dropout=expert_dropout)


MODEL_CLASSES = {cls.__name__: cls for cls in (SharedBottom, OMoE, MMoE)}
